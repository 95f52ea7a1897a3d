from django.core.management.base import BaseCommand, CommandError

from commerce.models import OrderEvent, StripeEvent
from commerce.payments.reconciliation import replay_event


class Command(BaseCommand):
    help = "Process a stored Stripe event again (fulfilment is idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("event_id")
        parser.add_argument("--dry-run", action="store_true", help="Show the event only.")

    def handle(self, *args, **options):
        row = StripeEvent.objects.filter(event_id=options["event_id"]).first()
        if row is None:
            raise CommandError(
                f"No stored event {options['event_id']!r}. Reconcile fetches "
                "events Stripe still holds: manage.py reconcile_stripe."
            )
        self.stdout.write(
            f"{row.event_id} {row.type}: {row.status}, {row.attempts} attempt(s)"
            + (f", last error: {row.error}" if row.error else "")
        )
        if options["dry_run"]:
            return
        try:
            status = replay_event(row.event_id, source=OrderEvent.Source.COMMAND)
        except Exception as exc:
            raise CommandError(f"Replay failed: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"replayed: {status}"))
