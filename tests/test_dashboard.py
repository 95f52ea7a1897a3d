"""The dashboard's shop panel against orders whose figures are known."""

from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.backoffice.dashboard import figures
from commerce.models import Dispute, Order, ReconciliationRun, Refund, StripeEvent

NOW = timezone.now()


def order(paid_ago=None, amount=4900, currency="usd", status=Order.Status.PAID):
    return Order.objects.create(
        email="b@example.com",
        status=status,
        currency=currency,
        amount_subtotal=amount,
        amount_total=amount if paid_ago is not None else None,
        paid_at=NOW - paid_ago if paid_ago is not None else None,
        expires_at=NOW + timedelta(hours=1),
    )


@pytest.fixture
def shop(db):
    order(timedelta(minutes=1))  # today (unless the test runs just after midnight)
    order(timedelta(days=3), amount=2500)
    order(timedelta(days=3), amount=1000, currency="eur")
    order(timedelta(days=20), amount=10000)
    order(timedelta(days=40))  # outside every period
    order(None, status=Order.Status.PENDING)  # not paid: counts nowhere
    refunded = order(timedelta(days=2))
    Refund.objects.create(
        order=refunded, stripe_refund_id="re_1", amount=4900, currency="usd", status="succeeded"
    )
    disputed = order(timedelta(days=5), status=Order.Status.DISPUTED)
    Dispute.objects.create(order=disputed, stripe_dispute_id="dp_1", status="open", amount=4900)
    Dispute.objects.create(order=disputed, stripe_dispute_id="dp_2", status="won", amount=4900)
    StripeEvent.objects.create(event_id="evt_f", type="x", payload={}, status="failed")
    StripeEvent.objects.create(event_id="evt_d", type="x", payload={}, status="dead")
    StripeEvent.objects.create(event_id="evt_ok", type="x", payload={}, status="processed")
    ReconciliationRun.objects.create(since=NOW, ok=True, started_at=NOW - timedelta(minutes=5))


def period(label):
    return next(p for p in figures(NOW)["periods"] if p["label"] == label)


def test_seven_days_count_paid_orders_and_revenue_per_currency(shop):
    seven = period("7 days")
    assert seven["orders"] == 5
    assert seven["revenue"] == ["€10.00", "$172.00"]  # 49 + 25 + 49 refunded + 49 disputed


def test_thirty_days_include_older_orders_but_not_those_before(shop):
    thirty = period("30 days")
    assert thirty["orders"] == 6 and "$272.00" in thirty["revenue"]


def test_refunds_are_counted_with_their_amount(shop):
    assert period("7 days")["refunds"] == 1 and period("7 days")["refunded"] == ["$49.00"]


def test_open_disputes_failed_and_dead_events_and_the_last_run(shop):
    data = figures(NOW)
    assert data["open_disputes"] == 1
    assert (data["failed_events"], data["dead_events"]) == (1, 1)
    assert data["last_run"].ok


def test_the_panel_links_each_figure_to_its_list(superuser_client, shop):
    content = superuser_client.get("/admin/").content.decode()
    assert "Shop" in content and "$172.00" in content
    for link in (
        "/admin/commerce/orders/?outcome=disputed",
        "/admin/commerce/stripe-events/?status=failed",
        "/admin/commerce/stripe-events/?status=dead",
        "/admin/commerce/reconciliation-runs/",
        "/admin/commerce/orders/?paid_since=",
    ):
        assert link in content, link


def test_the_paid_since_link_lists_those_orders(superuser_client, shop):
    url = period("7 days")["url"]
    content = superuser_client.get(url).content.decode()
    old = Order.objects.get(paid_at__lt=NOW - timedelta(days=30))
    assert old.public_id not in content
    recent = Order.objects.filter(amount_total=2500).get()
    assert recent.public_id in content


def test_editors_without_money_permissions_see_no_panel(editor_client, shop):
    content = editor_client.get("/admin/").content.decode()
    assert "shop-panel-heading" not in content and "$172.00" not in content


def test_the_panel_costs_a_fixed_number_of_queries(shop, django_assert_max_num_queries):
    with django_assert_max_num_queries(14):  # 12 for orders, 2 for memberships
        figures(NOW)
