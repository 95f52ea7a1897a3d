from django.core.management.base import BaseCommand

from commerce.backoffice.actions import grant_access
from commerce.management.commands import _access


class Command(BaseCommand):
    help = "Give a learner access to a course, with a reason for the audit trail."

    def add_arguments(self, parser):
        _access.add_arguments(parser)

    def handle(self, *args, **options):
        course, user, email = _access.resolve(options)
        who = user.email if user else email
        if options["dry_run"]:
            self.stdout.write(f"[dry run] would grant {course.title} to {who}")
            return
        entitlement, created = grant_access(
            course=course, user=user, email=email, reason=options["reason"], via="command"
        )
        verb = "granted" if created else "already had"
        self.stdout.write(
            self.style.SUCCESS(
                f"{who} {verb} access to {course.title} (entitlement {entitlement.pk})"
            )
        )
