from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from commerce.payments import gateway
from commerce.payments.reconciliation import reconcile


def parse_since(value):
    """ISO date/time, or a duration such as 36h or 7d."""
    try:
        if value[-1] in "hd" and value[:-1].isdigit():
            unit = {"h": "hours", "d": "days"}[value[-1]]
            return timezone.now() - timedelta(**{unit: int(value[:-1])})
        parsed = datetime.fromisoformat(value)
    except (ValueError, IndexError) as exc:
        raise CommandError(f"--since {value!r}: use an ISO date (2026-11-20) or 36h / 7d") from exc
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = "Bring orders and events in line with Stripe (recovers webhooks that never arrived)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO date/time or 36h / 7d (default RECONCILE_DAYS)")
        parser.add_argument("--dry-run", action="store_true", help="Report, change nothing.")

    def handle(self, *args, **options):
        since = parse_since(options["since"]) if options["since"] else None
        try:
            run = reconcile(since=since, dry_run=options["dry_run"], triggered_by="command")
        except gateway.GatewayError as exc:
            raise CommandError(f"Stripe could not be reached: {exc}") from exc
        summary = run.summary
        prefix = "[dry run] " if run.dry_run else ""
        self.stdout.write(
            f"{prefix}since {run.since:%Y-%m-%d %H:%M} UTC: "
            f"{summary['sessions_checked']} session(s) checked, "
            f"{summary['orders_fixed']} order(s) fixed, {summary['events_seen']} event(s) seen, "
            f"{summary['events_recovered']} recovered"
        )
        for line in summary["fixed"]:
            self.stdout.write(f"  {line}")
