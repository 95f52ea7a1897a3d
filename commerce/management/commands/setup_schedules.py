from django.core.management.base import BaseCommand
from django_q.models import Schedule

SCHEDULES = [
    ("commerce: expire pending orders", "commerce.tasks.expire_pending_orders_job", 10),
    ("commerce: reconcile with Stripe", "commerce.tasks.reconcile_job", 15),
    ("commerce: retry failed Stripe events", "commerce.tasks.retry_failed_events_job", 5),
    ("commerce: send missing receipts", "commerce.tasks.send_missing_receipts_job", 10),
    ("commerce: deliver gifts due today", "commerce.tasks.deliver_gifts_job", 15),
    ("commerce: announce lessons opened", "commerce.tasks.announce_opened_lessons_job", 15),
]


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules (idempotent; run on every deploy)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args, **options):
        for name, func, minutes in SCHEDULES:
            if options["dry_run"]:
                self.stdout.write(f"would set {name}: {func} every {minutes} min")
                continue
            _, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
            self.stdout.write(f"{'created' if created else 'updated'} {name}: every {minutes} min")
        self.stdout.write(self.style.SUCCESS(f"{len(SCHEDULES)} schedule(s) in place."))
