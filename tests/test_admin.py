"""The Wagtail admin for money: renders, exports, and keeps editors out unless granted."""

import pytest
from wagtail.models import ModelLogEntry

from commerce.models import Entitlement, StripeEvent
from tests.helpers import events, post_event, start

URLS = [
    "/admin/commerce/orders/",
    "/admin/commerce/entitlements/",
    "/admin/commerce/stripe-events/",
    "/admin/commerce/reconciliation-runs/",
    "/admin/reports/sales/",
    "/admin/commerce/reconcile/",
    "/admin/commerce/grant/",
]


@pytest.mark.parametrize("url", URLS)
def test_admin_money_views_render_for_an_administrator(superuser_client, sold, url):
    assert superuser_client.get(url).status_code == 200


@pytest.mark.parametrize("url", URLS)
def test_editors_without_commerce_permissions_see_no_money(editor_client, sold, url):
    refused = editor_client.get(url)  # Wagtail sends the refused to its dashboard
    assert (refused.status_code, refused["Location"]) == (302, "/admin/")


def test_the_order_inspect_view_shows_items_timeline_and_ledger(superuser_client, sold):
    response = superuser_client.get(f"/admin/commerce/orders/inspect/{sold.pk}/")
    content = response.content.decode()
    assert response.status_code == 200
    assert "Timeline" in content and "pending → paid" in content
    assert sold.stripe_events.first().event_id in content


def test_orders_are_read_only_even_for_administrators(superuser_client, sold):
    for method, url in [
        ("get", f"/admin/commerce/orders/edit/{sold.pk}/"),
        ("get", "/admin/commerce/orders/new/"),
        ("post", f"/admin/commerce/orders/delete/{sold.pk}/"),
    ]:
        response = getattr(superuser_client, method)(url)
        assert (response.status_code, response["Location"]) == (302, "/admin/"), url
    sold.refresh_from_db()
    assert sold.status == "paid"


def test_orders_filter_by_status_and_search_by_email(superuser_client, sold):
    assert (
        sold.public_id
        in superuser_client.get("/admin/commerce/orders/?status=paid").content.decode()
    )
    assert (
        sold.public_id
        not in superuser_client.get("/admin/commerce/orders/?status=refunded").content.decode()
    )
    assert (
        sold.public_id
        in superuser_client.get("/admin/commerce/orders/?q=guest@example").content.decode()
    )


def test_orders_export_as_csv(superuser_client, sold):
    response = superuser_client.get("/admin/commerce/orders/?export=csv")
    assert response.status_code == 200
    body = (
        b"".join(response.streaming_content).decode()
        if response.streaming
        else (response.content.decode())
    )
    assert sold.public_id in body and "4900" in body


def test_granting_from_the_admin_needs_a_reason_and_is_audited(superuser_client, course):
    url = "/admin/commerce/grant/"
    refused = superuser_client.post(
        url, {"email": "vip@example.com", "course": course.pk, "reason": ""}
    )
    assert refused.status_code == 200 and not Entitlement.objects.exists()
    superuser_client.post(
        url, {"email": "vip@example.com", "course": course.pk, "reason": "press review copy"}
    )
    entitlement = Entitlement.objects.get()
    assert entitlement.granted_by == superuser_client.user
    entry = ModelLogEntry.objects.get(action="commerce.grant")
    assert entry.user_id == superuser_client.user.pk and entry.data["reason"] == "press review copy"


def test_revoking_from_the_admin_is_audited(superuser_client, sold):
    entitlement = Entitlement.objects.get()
    superuser_client.post(
        f"/admin/commerce/entitlements/{entitlement.pk}/revoke/", {"reason": "chargeback by phone"}
    )
    entitlement.refresh_from_db()
    assert (entitlement.status, entitlement.reason) == ("revoked", "chargeback by phone")
    assert ModelLogEntry.objects.get(action="commerce.revoke").user_id == superuser_client.user.pk


def test_an_editor_cannot_grant_access(editor_client, course):
    response = editor_client.post(
        "/admin/commerce/grant/",
        {"email": "x@example.com", "course": course.pk, "reason": "sneaky"},
    )
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert not Entitlement.objects.exists()


def test_a_failed_event_can_be_replayed_from_the_admin(
    superuser_client, course, emulator, monkeypatch
):
    from django.test import Client

    from commerce.payments import fulfilment

    order = start(Client(), course)
    emulator.pay(order.stripe_session_id)
    real = fulfilment.fulfil_checkout_session
    monkeypatch.setattr(
        fulfilment,
        "fulfil_checkout_session",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")),
    )
    post_event(events(emulator, order)[0])
    monkeypatch.setattr(fulfilment, "fulfil_checkout_session", real)
    row = StripeEvent.objects.get()
    page = superuser_client.get(f"/admin/commerce/stripe-events/inspect/{row.pk}/")
    assert b"Replay this event" in page.content and b"boom" in page.content
    superuser_client.post(f"/admin/commerce/stripe-events/{row.pk}/replay/")
    row.refresh_from_db()
    assert row.status == "processed"
    assert ModelLogEntry.objects.filter(action="commerce.replay").count() == 1


def test_reconciliation_runs_from_the_admin(superuser_client, course, emulator):
    from django.test import Client

    order = start(Client(), course)
    emulator.pay(order.stripe_session_id)
    response = superuser_client.post("/admin/commerce/reconcile/", follow=True)
    assert b"1 order(s) fixed" in response.content
    order.refresh_from_db()
    assert order.status == "paid"


def test_the_sales_report_sums_paid_orders(superuser_client, sold):
    content = superuser_client.get("/admin/reports/sales/").content.decode()
    assert "Python" in content and "$49.00" in content
