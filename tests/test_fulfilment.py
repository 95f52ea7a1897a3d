"""Payment facts become order states and access, exactly once and in any order."""

import copy
import itertools

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from commerce.models import AppendOnlyError, Entitlement, Order, OrderEvent, StripeEvent
from tests.helpers import deliver, events, get_success, post_event, start


def active_entitlements(order):
    return Entitlement.objects.filter(order_item__order=order, status="active").count()


def settled(order):
    order.refresh_from_db()
    return order


@pytest.fixture
def paid(client, course, emulator):
    """A guest order paid at Stripe, its webhook not yet delivered."""
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    return settled(order)


def test_a_completed_payment_grants_access_and_sends_one_receipt(paid, emulator):
    deliver(*events(emulator, paid))
    order = settled(paid)
    assert order.status == Order.Status.PAID
    assert order.amount_total == 4900
    entitlement = Entitlement.objects.get()
    assert (entitlement.email, entitlement.user, entitlement.status) == (
        "guest@example.com",
        None,
        "active",
    )
    assert len(mail.outbox) == 1
    assert order.public_id in mail.outbox[0].body
    assert mail.outbox[0].alternatives[0][1] == "text/html"
    assert order.receipt_sent_at is not None


def test_the_audit_trail_records_each_transition_and_its_source(paid, emulator):
    deliver(*events(emulator, paid))
    trail = list(OrderEvent.objects.filter(order=paid).values_list("source", "to_status"))
    assert trail == [("checkout", "pending"), ("webhook", "paid")]
    assert OrderEvent.objects.last().stripe_event_id == events(emulator, paid)[0]["id"]


def test_order_events_are_append_only(paid, emulator):
    event = OrderEvent.objects.first()
    event.message = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


def test_the_success_page_fulfils_before_the_webhook_arrives(client, paid, emulator):
    response = get_success(client, paid)
    assert response.status_code == 200
    assert b"Payment received" in response.content
    assert settled(paid).status == Order.Status.PAID
    assert active_entitlements(paid) == 1
    assert OrderEvent.objects.filter(order=paid).last().source == "success_page"


def test_the_webhook_after_the_success_page_changes_nothing(client, paid, emulator):
    get_success(client, paid)
    trail = OrderEvent.objects.count()
    deliver(*events(emulator, paid))
    assert OrderEvent.objects.count() == trail
    assert active_entitlements(paid) == 1 and len(mail.outbox) == 1
    assert StripeEvent.objects.get().status == "processed"


def test_the_success_page_shows_nothing_of_another_buyers_order(paid, emulator):
    stranger = Client()
    response = stranger.get(reverse("checkout_success"), {"session_id": paid.stripe_session_id})
    assert response.status_code == 404
    assert settled(paid).status == Order.Status.PENDING


def test_a_forged_session_id_is_404(client, paid):
    response = client.get(reverse("checkout_success"), {"session_id": "cs_test_forged"})
    assert response.status_code == 404


@pytest.mark.parametrize("value", ["", "x", "cs_<script>", "cs_" + "a" * 300])
def test_a_malformed_session_id_is_400(client, db, value):
    assert client.get(reverse("checkout_success"), {"session_id": value}).status_code == 400


def test_a_logged_in_buyer_gets_a_link_to_the_first_lesson(
    client, course, emulator, django_user_model
):
    user = django_user_model.objects.create_user("u", "u@example.com", "pw")
    client.force_login(user)
    client.post(reverse("checkout", args=[course.pk]))
    order = Order.objects.get()
    emulator.pay(order.stripe_session_id)
    response = client.get(reverse("checkout_success"), {"session_id": order.stripe_session_id})
    assert b"Start the first lesson" in response.content
    assert course.first_lesson().url.encode() in response.content


def test_order_status_json_is_for_its_buyer_only(client, paid, emulator):
    deliver(*events(emulator, paid))
    url = reverse("order_status", args=[paid.public_id])
    data = client.get(url).json()
    assert (data["status"], data["paid"]) == ("paid", True)
    assert Client().get(url).status_code == 404


def test_cancel_leaves_the_order_pending_and_says_so(client, course, emulator):
    order = start(client, course)
    response = client.get(reverse("checkout_cancel"), {"order": order.public_id})
    assert b"Nothing was charged" in response.content and order.public_id.encode() in (
        response.content
    )
    assert settled(order).status == Order.Status.PENDING


def test_an_async_payment_waits_then_grants_on_success(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id, method="async")
    deliver(*events(emulator, order))
    assert settled(order).status == Order.Status.PROCESSING
    assert active_entitlements(order) == 0
    assert [m.subject for m in mail.outbox] == ["Your payment is being processed"]
    emulator.settle_async(order.stripe_session_id, succeeded=True)
    deliver(*events(emulator, order, "checkout.session.async_payment_succeeded"))
    assert settled(order).status == Order.Status.PAID
    assert active_entitlements(order) == 1
    assert mail.outbox[-1].subject.startswith("Your receipt") and len(mail.outbox) == 2


def test_an_async_payment_that_fails_grants_nothing(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id, method="async")
    emulator.settle_async(order.stripe_session_id, succeeded=False)
    deliver(*events(emulator, order))
    assert settled(order).status == Order.Status.FAILED
    assert not Entitlement.objects.exists()


def test_async_success_arriving_before_completion_ends_paid(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id, method="async")
    emulator.settle_async(order.stripe_session_id, succeeded=True)
    deliver(*reversed(events(emulator, order)))
    assert settled(order).status == Order.Status.PAID
    assert active_entitlements(order) == 1


def test_an_expired_session_expires_the_order(client, course, emulator):
    order = start(client, course)
    emulator.expire_session(order.stripe_session_id)
    deliver(*events(emulator, order))
    assert settled(order).status == Order.Status.EXPIRED
    assert not Entitlement.objects.exists()


def test_a_promotion_code_discount_is_recorded_not_flagged(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id, promotion_code="SAVE20")
    deliver(*events(emulator, order))
    order = settled(order)
    assert (order.status, order.amount_total, order.amount_discount) == ("paid", 3920, 980)
    assert "discount of $9.80" in OrderEvent.objects.filter(order=order).last().message


@pytest.mark.parametrize(
    "field,value", [("amount_total", 100), ("amount_subtotal", 100), ("currency", "eur")]
)
def test_an_unexplained_amount_or_currency_is_flagged_and_grants_nothing(
    paid, emulator, field, value
):
    event = copy.deepcopy(events(emulator, paid)[0])
    event["data"]["object"][field] = value
    deliver(event)
    order = settled(paid)
    assert order.status == Order.Status.NEEDS_REVIEW
    assert order.review_reason
    assert not Entitlement.objects.exists() and not mail.outbox


def test_a_session_of_another_order_is_not_applied(client, course, emulator):
    first = start(client, course)
    second = start(Client(), course, "other@example.com")
    emulator.pay(second.stripe_session_id)
    event = copy.deepcopy(events(emulator, second)[0])
    event["data"]["object"]["client_reference_id"] = first.public_id
    event["data"]["object"]["metadata"] = {"order_id": first.public_id}
    deliver(event)
    assert StripeEvent.objects.get().status == "ignored"
    assert settled(first).status == Order.Status.PENDING


def test_a_partial_refund_keeps_access_and_a_full_refund_revokes_it(paid, emulator):
    deliver(*events(emulator, paid))
    emulator.create_refund(
        {"payment_intent": settled(paid).stripe_payment_intent_id, "amount": "900"}
    )
    deliver(events(emulator, paid, "charge.refunded")[-1])
    order = settled(paid)
    assert (order.status, order.amount_refunded) == ("partially_refunded", 900)
    assert active_entitlements(order) == 1
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id})
    deliver(events(emulator, paid, "charge.refunded")[-1])
    order = settled(paid)
    assert (order.status, order.amount_refunded) == ("refunded", 4900)
    entitlement = Entitlement.objects.get()
    assert (entitlement.status, entitlement.reason) == ("revoked", "refunded in full")
    assert order.refunds.count() == 2


def test_the_partial_refund_setting_revokes_on_any_refund(paid, emulator, settings):
    settings.PARTIAL_REFUND_REVOKES = True
    deliver(*events(emulator, paid))
    emulator.create_refund(
        {"payment_intent": settled(paid).stripe_payment_intent_id, "amount": "100"}
    )
    deliver(events(emulator, paid, "charge.refunded")[-1])
    assert Entitlement.objects.get().status == "revoked"


def test_a_refund_seen_in_two_events_is_counted_once(paid, emulator):
    deliver(*events(emulator, paid))
    emulator.create_refund(
        {"payment_intent": settled(paid).stripe_payment_intent_id, "amount": "1000"}
    )
    event = events(emulator, paid, "charge.refunded")[-1]
    again = copy.deepcopy(event)
    again["id"] = "evt_test_resent_refund"
    deliver(event, again)
    assert settled(paid).amount_refunded == 1000


def test_a_refund_before_the_completion_ends_refunded_with_no_access(paid, emulator):
    emulator.create_refund(
        {"payment_intent": emulator.sessions[paid.stripe_session_id]["payment_intent"]}
    )
    completed, refunded = events_by_pi(emulator, paid)
    deliver(refunded, completed)
    order = settled(paid)
    assert order.status == Order.Status.REFUNDED
    assert not Entitlement.objects.filter(status="active").exists()


def events_by_pi(emulator, order):
    session = emulator.sessions[order.stripe_session_id]
    pi = session["payment_intent"]
    return [
        e
        for e in emulator.events
        if e["data"]["object"].get("id") == session["id"]
        or e["data"]["object"].get("payment_intent") == pi
    ]


def test_a_dispute_suspends_and_a_won_dispute_restores(paid, emulator):
    deliver(*events(emulator, paid))
    dispute = emulator.create_dispute({"payment_intent": settled(paid).stripe_payment_intent_id})
    deliver(events(emulator, paid, "charge.dispute.created")[-1])
    assert settled(paid).status == Order.Status.DISPUTED
    assert Entitlement.objects.get().status == "suspended"
    emulator.close_dispute(dispute["id"], "won")
    deliver(events(emulator, paid, "charge.dispute.closed")[-1])
    assert settled(paid).status == Order.Status.PAID
    assert Entitlement.objects.get().status == "active"


def test_a_lost_dispute_revokes(paid, emulator):
    deliver(*events(emulator, paid))
    dispute = emulator.create_dispute({"payment_intent": settled(paid).stripe_payment_intent_id})
    emulator.close_dispute(dispute["id"], "lost")
    deliver(*events(emulator, paid, "charge.dispute.created", "charge.dispute.closed"))
    assert Entitlement.objects.get().status == "revoked"
    assert settled(paid).status == Order.Status.DISPUTED


def test_a_dispute_closed_before_it_was_created_stays_closed(paid, emulator):
    deliver(*events(emulator, paid))
    dispute = emulator.create_dispute({"payment_intent": settled(paid).stripe_payment_intent_id})
    emulator.close_dispute(dispute["id"], "won")
    created, closed = events(emulator, paid, "charge.dispute.created", "charge.dispute.closed")
    deliver(closed, created)
    assert Entitlement.objects.get().status == "active"
    assert settled(paid).status == Order.Status.PAID


def test_a_processing_error_leaves_a_failed_row_and_the_retry_succeeds(paid, emulator, monkeypatch):
    from commerce.payments import fulfilment

    real = fulfilment.fulfil_checkout_session
    monkeypatch.setattr(
        fulfilment,
        "fulfil_checkout_session",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("database hiccup")),
    )
    event = events(emulator, paid)[0]
    response = post_event(event)
    assert response.status_code == 500
    row = StripeEvent.objects.get()
    assert (row.status, row.attempts) == ("failed", 1)
    assert "database hiccup" in row.error and row.next_attempt_at is not None
    assert settled(paid).status == Order.Status.PENDING and not Entitlement.objects.exists()

    monkeypatch.setattr(fulfilment, "fulfil_checkout_session", real)
    assert post_event(event).status_code == 200
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == ("processed", 2, "")
    assert active_entitlements(paid) == 1


def scenario_events(client, course, emulator, email):
    order = start(client, course, email)
    emulator.pay(order.stripe_session_id)
    pi = emulator.sessions[order.stripe_session_id]["payment_intent"]
    emulator.create_refund({"payment_intent": pi, "amount": "500"})
    dispute = emulator.create_dispute({"payment_intent": pi})
    emulator.close_dispute(dispute["id"], "won")
    return order, events_by_pi(emulator, order)


def test_the_final_state_does_not_depend_on_event_order(course, emulator):
    """Every order of: completed, partial refund, dispute created, dispute won."""
    outcomes = set()
    for n, perm in enumerate(itertools.permutations(range(4))):
        order, evts = scenario_events(Client(), course, emulator, f"buyer{n}@example.com")
        assert len(evts) == 4
        deliver(*(evts[i] for i in perm))
        order = settled(order)
        entitlement = Entitlement.objects.get(order_item__order=order)
        outcomes.add((order.status, order.amount_refunded, entitlement.status))
    assert outcomes == {("partially_refunded", 500, "active")}
