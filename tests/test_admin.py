"""The Wagtail admin for money: renders, exports, and keeps editors out unless granted."""

import pytest
from django.contrib.auth.models import Group, Permission
from wagtail.models import ModelLogEntry

from commerce.models import Entitlement, StripeEvent
from tests.stripe_helpers import post_event
from tests.test_fulfilment import deliver, events, start


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    client.user = admin
    return client


@pytest.fixture
def editor_client(client, django_user_model):
    editor = django_user_model.objects.create_user("ed", "ed@example.com", "pw")
    editors = Group.objects.create(name="Course editors")
    editors.permissions.add(Permission.objects.get(codename="access_admin"))
    editor.groups.add(editors)
    client.force_login(editor)
    client.user = editor
    return client


@pytest.fixture
def sold(course, emulator):
    from django.test import Client

    order = start(Client(), course)
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    order.refresh_from_db()
    return order


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
def test_admin_money_views_render_for_an_administrator(admin_client, sold, url):
    assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize("url", URLS)
def test_editors_without_commerce_permissions_see_no_money(editor_client, sold, url):
    assert editor_client.get(url).status_code in (302, 403)


def test_the_order_inspect_view_shows_items_timeline_and_ledger(admin_client, sold):
    response = admin_client.get(f"/admin/commerce/orders/inspect/{sold.pk}/")
    content = response.content.decode()
    assert response.status_code == 200
    assert "Timeline" in content and "pending → paid" in content
    assert sold.stripe_events.first().event_id in content


def test_orders_are_read_only_even_for_administrators(admin_client, sold):
    assert admin_client.get(f"/admin/commerce/orders/edit/{sold.pk}/").status_code in (302, 403)
    assert admin_client.get("/admin/commerce/orders/new/").status_code in (302, 403)
    assert admin_client.post(f"/admin/commerce/orders/delete/{sold.pk}/").status_code in (302, 403)
    sold.refresh_from_db()
    assert sold.status == "paid"


def test_orders_filter_by_status_and_search_by_email(admin_client, sold):
    assert (
        sold.public_id in admin_client.get("/admin/commerce/orders/?status=paid").content.decode()
    )
    assert (
        sold.public_id
        not in admin_client.get("/admin/commerce/orders/?status=refunded").content.decode()
    )
    assert (
        sold.public_id
        in admin_client.get("/admin/commerce/orders/?q=guest@example").content.decode()
    )


def test_orders_export_as_csv(admin_client, sold):
    response = admin_client.get("/admin/commerce/orders/?export=csv")
    assert response.status_code == 200
    body = (
        b"".join(response.streaming_content).decode()
        if response.streaming
        else (response.content.decode())
    )
    assert sold.public_id in body and "4900" in body


def test_granting_from_the_admin_needs_a_reason_and_is_audited(admin_client, course):
    url = "/admin/commerce/grant/"
    refused = admin_client.post(
        url, {"email": "vip@example.com", "course": course.pk, "reason": ""}
    )
    assert refused.status_code == 200 and not Entitlement.objects.exists()
    admin_client.post(
        url, {"email": "vip@example.com", "course": course.pk, "reason": "press review copy"}
    )
    entitlement = Entitlement.objects.get()
    assert entitlement.granted_by == admin_client.user
    entry = ModelLogEntry.objects.get(action="commerce.grant")
    assert entry.user_id == admin_client.user.pk and entry.data["reason"] == "press review copy"


def test_revoking_from_the_admin_is_audited(admin_client, sold):
    entitlement = Entitlement.objects.get()
    admin_client.post(
        f"/admin/commerce/entitlements/{entitlement.pk}/revoke/", {"reason": "chargeback by phone"}
    )
    entitlement.refresh_from_db()
    assert (entitlement.status, entitlement.reason) == ("revoked", "chargeback by phone")
    assert ModelLogEntry.objects.get(action="commerce.revoke").user_id == admin_client.user.pk


def test_an_editor_cannot_grant_access(editor_client, course):
    response = editor_client.post(
        "/admin/commerce/grant/",
        {"email": "x@example.com", "course": course.pk, "reason": "sneaky"},
    )
    assert response.status_code in (302, 403)
    assert not Entitlement.objects.exists()


def test_a_failed_event_can_be_replayed_from_the_admin(admin_client, course, emulator, monkeypatch):
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
    page = admin_client.get(f"/admin/commerce/stripe-events/inspect/{row.pk}/")
    assert b"Replay this event" in page.content and b"boom" in page.content
    admin_client.post(f"/admin/commerce/stripe-events/{row.pk}/replay/")
    row.refresh_from_db()
    assert row.status == "processed"
    assert ModelLogEntry.objects.filter(action="commerce.replay").count() == 1


def test_reconciliation_runs_from_the_admin(admin_client, course, emulator):
    from django.test import Client

    order = start(Client(), course)
    emulator.pay(order.stripe_session_id)
    response = admin_client.post("/admin/commerce/reconcile/", follow=True)
    assert b"1 order(s) fixed" in response.content
    order.refresh_from_db()
    assert order.status == "paid"


def test_the_sales_report_sums_paid_orders(admin_client, sold):
    content = admin_client.get("/admin/reports/sales/").content.decode()
    assert "Python" in content and "$49.00" in content
