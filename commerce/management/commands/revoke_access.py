from django.core.management.base import BaseCommand, CommandError

from commerce.backoffice.actions import revoke_access
from commerce.management.commands import _access


class Command(BaseCommand):
    help = "Take a learner's access to a course away, with a reason for the audit trail."

    def add_arguments(self, parser):
        _access.add_arguments(parser)

    def handle(self, *args, **options):
        course, user, email = _access.resolve(options)
        who = user.email if user else email
        if options["dry_run"]:
            self.stdout.write(f"[dry run] would revoke {course.title} from {who}")
            return
        revoked = revoke_access(
            course=course,
            user=user,
            email=None if user else email,
            reason=options["reason"],
            via="command",
        )
        if not revoked:
            raise CommandError(f"{who} has no active access to {course.title}.")
        self.stdout.write(
            self.style.SUCCESS(f"revoked {len(revoked)} entitlement(s) of {who} for {course.title}")
        )
