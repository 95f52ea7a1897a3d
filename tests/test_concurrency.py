"""Races on real PostgreSQL: duplicate deliveries at once, and the browser racing the webhook."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from commerce.models import Entitlement, Order, OrderEvent, StripeEvent
from tests.helpers import post_event, postgres_only, run_together

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


def paid_order(course, emulator, email="guest@example.com"):
    client = Client()
    response = client.post(reverse("checkout", args=[course.pk]), {"email": email})
    order = Order.objects.get(stripe_session_url=response["Location"])
    emulator.pay(order.stripe_session_id)
    order.refresh_from_db()
    return client, order


def completed_event(emulator, order):
    return next(
        e
        for e in emulator.events
        if e["type"] == "checkout.session.completed"
        and e["data"]["object"]["id"] == order.stripe_session_id
    )


@pytest.mark.parametrize("copies", [2, 10])
def test_the_same_event_delivered_at_once_grants_once(course, emulator, copies):
    _, order = paid_order(course, emulator)
    event = completed_event(emulator, order)
    responses = run_together(*[lambda: post_event(event)] * copies)
    assert [r.status_code for r in responses] == [200] * copies
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses == ["duplicate"] * (copies - 1) + ["processed"]
    assert StripeEvent.objects.count() == 1
    assert Entitlement.objects.filter(status="active").count() == 1
    assert OrderEvent.objects.filter(order=order, to_status="paid").count() == 1
    assert len(mail.outbox) == 1


def test_the_webhook_and_the_success_page_at_the_same_moment_grant_once(course, emulator):
    client, order = paid_order(course, emulator)
    event = completed_event(emulator, order)
    success = reverse("checkout_success") + f"?session_id={order.stripe_session_id}"
    web, hook = run_together(lambda: client.get(success), lambda: post_event(event))
    assert (web.status_code, hook.status_code) == (200, 200)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Entitlement.objects.filter(status="active").count() == 1
    assert OrderEvent.objects.filter(order=order, to_status="paid").count() == 1
    assert len(mail.outbox) == 1


def test_two_orders_for_the_same_buyer_and_course_grant_one_active_entitlement(course, emulator):
    _, first = paid_order(course, emulator, "twice@example.com")
    Order.objects.filter(pk=first.pk).update(expires_at=first.created_at)  # no reuse
    _, second = paid_order(course, emulator, "twice@example.com")
    events = [completed_event(emulator, first), completed_event(emulator, second)]
    run_together(*[lambda e=e: post_event(e) for e in events])
    assert Entitlement.objects.filter(status="active", email="twice@example.com").count() == 1
    assert Order.objects.filter(status="paid").count() == 2
    notes = OrderEvent.objects.filter(message__contains="no second grant")
    assert notes.count() == 1
    assert OrderEvent.objects.filter(message__startswith="automatic full refund").count() == 1


def test_refund_and_completion_at_once_end_refunded(course, emulator):
    _, order = paid_order(course, emulator)
    pi = emulator.sessions[order.stripe_session_id]["payment_intent"]
    emulator.create_refund({"payment_intent": pi})
    refund = next(e for e in emulator.events if e["type"] == "charge.refunded")
    run_together(lambda: post_event(completed_event(emulator, order)), lambda: post_event(refund))
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert not Entitlement.objects.filter(status="active").exists()


def test_two_workers_reconciling_at_once_grant_once(course, emulator):
    from commerce.payments import reconciliation

    _, order = paid_order(course, emulator)  # paid at Stripe, webhook never delivered
    run_together(reconciliation.reconcile, reconciliation.reconcile)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Entitlement.objects.filter(status="active").count() == 1
    assert OrderEvent.objects.filter(order=order, to_status="paid").count() == 1
    assert len(mail.outbox) == 1


def test_two_workers_expiring_at_once_expire_once(course, emulator):
    from datetime import timedelta

    from django.utils import timezone

    from commerce.payments import reconciliation

    client = Client()
    client.post(reverse("checkout", args=[course.pk]), {"email": "late@example.com"})
    order = Order.objects.get()
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    run_together(reconciliation.expire_pending_orders, reconciliation.expire_pending_orders)
    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED
    assert OrderEvent.objects.filter(order=order, to_status="expired").count() == 1
