from django.core.management.base import BaseCommand, CommandError

from commerce.models import OrderEvent
from commerce.payments.reconciliation import expire_pending_orders


class Command(BaseCommand):
    help = "Expire pending orders past their TTL (expiring their Checkout Session at Stripe)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Only count what is due.")

    def handle(self, *args, **options):
        result = expire_pending_orders(dry_run=options["dry_run"], source=OrderEvent.Source.COMMAND)
        prefix = "[dry run] " if options["dry_run"] else ""
        self.stdout.write(
            f"{prefix}due: {result['due']}, expired: {result['expired']}, "
            f"fulfilled (paid late): {result['fulfilled']}, "
            f"errors: {result['errors']}"
        )
        if result["errors"]:
            raise CommandError(f"{result['errors']} order(s) could not be expired; see the log.")
