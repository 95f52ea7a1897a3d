"""The shop at a glance, for the Wagtail dashboard: money in, money back, what needs a look."""

from datetime import timedelta

from django.db.models import Count, Sum
from django.urls import reverse
from django.utils import timezone
from wagtail.admin.ui.components import Component

from base.money import format_money
from commerce.models import Dispute, Order, ReconciliationRun, Refund, StripeEvent

PERIODS = [("Today", 0), ("7 days", 7), ("30 days", 30)]


def since(days, now):
    """Midnight today for 0, else the same time ``days`` ago."""
    local = timezone.localtime(now)
    if days == 0:
        return local.replace(hour=0, minute=0, second=0, microsecond=0)
    return now - timedelta(days=days)


def figures(now=None):
    now = now or timezone.now()
    orders_url = reverse("commerce_order:index")
    periods = []
    for label, days in PERIODS:
        start = since(days, now)
        paid = (
            Order.objects.filter(paid_at__gte=start)
            .values("currency")
            .annotate(orders=Count("pk"), revenue=Sum("amount_total"))
            .order_by("currency")
        )
        refunds = (
            Refund.objects.filter(created_at__gte=start)
            .values("currency")
            .annotate(count=Count("pk"), total=Sum("amount"))
            .order_by("currency")
        )
        periods.append(
            {
                "label": label,
                "orders": sum(row["orders"] for row in paid),
                "revenue": [format_money(row["revenue"] or 0, row["currency"]) for row in paid],
                "refunds": sum(row["count"] for row in refunds),
                "refunded": [format_money(row["total"], row["currency"]) for row in refunds],
                "url": f"{orders_url}?paid_since={start.date().isoformat()}",
            }
        )
    events_url = reverse("commerce_stripeevent:index")
    last_run = ReconciliationRun.objects.filter(dry_run=False).order_by("-started_at").first()
    from commerce.billing import memberships

    return {
        "periods": periods,
        "memberships": memberships.figures(since(30, now), now),
        "memberships_url": reverse("commerce_membership:index"),
        "open_disputes": Dispute.objects.filter(status=Dispute.Status.OPEN).count(),
        "disputes_url": f"{orders_url}?outcome=disputed",
        "refunds_url": f"{orders_url}?outcome=refunded",
        "failed_events": StripeEvent.objects.filter(status=StripeEvent.Status.FAILED).count(),
        "failed_events_url": f"{events_url}?status=failed",
        "dead_events": StripeEvent.objects.filter(status=StripeEvent.Status.DEAD).count(),
        "dead_events_url": f"{events_url}?status=dead",
        "needs_review": Order.objects.filter(status=Order.Status.NEEDS_REVIEW).count(),
        "needs_review_url": f"{orders_url}?outcome=needs_review",
        "last_run": last_run,
        "runs_url": reverse("commerce_reconciliationrun:index"),
    }


class ShopPanel(Component):
    name = "shop"
    order = 50
    template_name = "commerce/admin/shop_panel.html"

    def get_context_data(self, parent_context=None):
        return figures()
