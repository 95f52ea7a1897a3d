"""Refunds from the order page: one Stripe refund per request, whoever clicks and however
often; the order changes only when Stripe confirms."""

import re

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from commerce.models import Order, OrderEvent, RefundRequest
from commerce.payments import refunds
from tests.helpers import deliver, events, post_event, postgres_only, run_together, start


def refund_url(order):
    return reverse("commerce_refund_order", args=[order.pk])


def form(client, order, **data):
    """The refund form as the page shows it: the fields given, and the basis it was shown with."""
    page = client.get(refund_url(order)).content.decode()
    return {"basis": re.search(r'name="basis" value="([^"]+)"', page).group(1), **data}


def stripe_refunds(emulator):
    return [r for r in emulator.requests if r[:2] == ("POST", "/v1/refunds")]


def confirm(emulator, order):
    """Stripe's charge.refunded for the order reaches the webhook."""
    for event in events(emulator, order, "charge.refunded"):
        assert post_event(event).status_code == 200
    order.refresh_from_db()


@pytest.fixture
def viewer_client(django_user_model):
    """Sees orders but may not refund them."""
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "pw")
    group = Group.objects.create(name="Bookkeepers")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="view_order"),
    )
    user.groups.add(group)
    client = Client()
    client.force_login(user)
    return client


def test_the_order_page_offers_a_refund_to_those_allowed(superuser_client, sold):
    page = superuser_client.get(reverse("commerce_order:inspect", args=[sold.pk]))
    assert refund_url(sold).encode() in page.content


def test_without_the_refund_permission_there_is_no_button_and_no_refund(
    viewer_client,
    sold,
    emulator,
):
    page = viewer_client.get(reverse("commerce_order:inspect", args=[sold.pk]))
    assert page.status_code == 200 and refund_url(sold).encode() not in page.content
    refused = viewer_client.get(refund_url(sold))  # Wagtail answers with its dashboard
    assert (refused.status_code, refused["Location"]) == (302, "/admin/")
    response = viewer_client.post(refund_url(sold), {"kind": "full", "reason": "sneaky"})
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    assert not stripe_refunds(emulator) and not RefundRequest.objects.exists()


def test_a_full_refund_asks_stripe_once_and_waits_for_its_confirmation(
    superuser_client,
    sold,
    emulator,
):
    response = superuser_client.post(
        refund_url(sold),
        form(superuser_client, sold, kind="full", reason="course not as described"),
        follow=True,
    )
    assert b"Refund of $49.00 requested" in response.content
    key = f"admin-refund-{sold.public_id}-0.0-4900"
    assert stripe_refunds(emulator) == [("POST", "/v1/refunds", key)]
    sold.refresh_from_db()
    assert sold.status == Order.Status.PAID and sold.amount_refunded == 0  # not yet
    trail = OrderEvent.objects.get(order=sold, source=OrderEvent.Source.ADMIN)
    assert trail.actor == superuser_client.user
    assert trail.message == "refund of $49.00 requested: course not as described"

    confirm(emulator, sold)
    assert sold.status == Order.Status.REFUNDED and sold.amount_refunded == 4900
    request = RefundRequest.objects.get()
    assert request.status == RefundRequest.Status.SENT
    assert request.stripe_refund_id == sold.refunds.get().stripe_refund_id


def test_a_partial_refund_is_entered_in_major_units(superuser_client, sold, emulator):
    superuser_client.post(
        refund_url(sold),
        form(superuser_client, sold, kind="partial", amount="12.50", reason="late"),
    )
    assert RefundRequest.objects.get().amount == 1250
    confirm(emulator, sold)
    assert sold.status == Order.Status.PARTIALLY_REFUNDED and sold.amount_refunded == 1250


@pytest.mark.parametrize(
    "data,error",
    [
        ({"kind": "full", "reason": ""}, b"This field is required"),
        ({"kind": "partial", "amount": "", "reason": "x"}, b"Enter the amount to refund"),
        ({"kind": "partial", "amount": "49.01", "reason": "x"}, b"Refund between $0.01 and $49.00"),
        ({"kind": "partial", "amount": "0", "reason": "x"}, b"Refund between"),
        ({"kind": "partial", "amount": "1.005", "reason": "x"}, b"cannot be that precise"),
        ({"kind": "partial", "amount": "abc", "reason": "x"}, b"Enter a number"),
        ({"kind": "sideways", "reason": "x"}, b"Select a valid choice"),
    ],
)
def test_bad_refund_input_is_refused_and_changes_nothing(
    superuser_client,
    sold,
    emulator,
    data,
    error,
):
    response = superuser_client.post(refund_url(sold), form(superuser_client, sold, **data))
    assert response.status_code == 200 and error in response.content
    assert not stripe_refunds(emulator) and not RefundRequest.objects.exists()


def test_a_double_click_refunds_once(superuser_client, sold, emulator):
    data = form(superuser_client, sold, kind="full", reason="double click")
    superuser_client.post(refund_url(sold), data)
    second = superuser_client.post(refund_url(sold), data, follow=True)
    assert b"Nothing is left to refund" in superuser_client.get(refund_url(sold)).content
    assert len(stripe_refunds(emulator)) == 1 and RefundRequest.objects.count() == 1
    assert second.status_code == 200


def test_the_same_form_sent_twice_before_confirmation_is_one_refund(
    superuser_client,
    sold,
    emulator,
):
    data = form(superuser_client, sold, kind="partial", amount="10", reason="goodwill")
    superuser_client.post(refund_url(sold), data)
    response = superuser_client.post(refund_url(sold), data, follow=True)
    assert b"was already requested" in response.content
    assert len(stripe_refunds(emulator)) == 1


def test_the_same_form_sent_again_after_confirmation_refunds_nothing_more(
    superuser_client, sold, emulator
):
    """The browser re-posting the form (back, reload) after Stripe has confirmed the refund."""
    data = form(superuser_client, sold, kind="partial", amount="10", reason="goodwill")
    superuser_client.post(refund_url(sold), data)
    confirm(emulator, sold)
    response = superuser_client.post(refund_url(sold), data, follow=True)
    assert b"was already requested" in response.content
    confirm(emulator, sold)
    assert sold.amount_refunded == 1000 and len(stripe_refunds(emulator)) == 1


def test_a_reloaded_form_asks_for_a_further_refund(superuser_client, sold, emulator):
    superuser_client.post(
        refund_url(sold), form(superuser_client, sold, kind="partial", amount="10", reason="a")
    )
    superuser_client.post(
        refund_url(sold), form(superuser_client, sold, kind="partial", amount="10", reason="b")
    )
    confirm(emulator, sold)
    assert sold.amount_refunded == 2000 and len(stripe_refunds(emulator)) == 2


def test_after_confirmation_the_same_amount_may_be_refunded_again(
    superuser_client,
    sold,
    emulator,
):
    superuser_client.post(
        refund_url(sold), form(superuser_client, sold, kind="partial", amount="10", reason="a")
    )
    confirm(emulator, sold)
    superuser_client.post(
        refund_url(sold), form(superuser_client, sold, kind="partial", amount="10", reason="b")
    )
    confirm(emulator, sold)
    assert sold.amount_refunded == 2000 and len(stripe_refunds(emulator)) == 2


@pytest.mark.parametrize("basis", ["", "forged", "1:0.0"])
def test_a_form_without_its_own_basis_changes_nothing(superuser_client, sold, emulator, basis):
    data = {"kind": "full", "reason": "x", "basis": basis}
    response = superuser_client.post(refund_url(sold), data)
    assert response.status_code == 200 and b"reload the page" in response.content
    assert not stripe_refunds(emulator) and not RefundRequest.objects.exists()


def test_another_orders_form_changes_nothing(superuser_client, sold, course, emulator):
    other = start(Client(), course, email="other@example.com")
    emulator.pay(other.stripe_session_id)
    deliver(*events(emulator, other))
    data = form(superuser_client, other, kind="full", reason="x")
    response = superuser_client.post(refund_url(sold), data)
    assert b"reload the page" in response.content and not stripe_refunds(emulator)


def test_an_unpaid_order_cannot_be_refunded(superuser_client, course, emulator):
    order = start(Client(), course)
    response = superuser_client.post(
        refund_url(order), {"kind": "full", "reason": "x", "basis": refunds.basis(order)}
    )
    assert b"Nothing is left to refund" in response.content or b"cannot be refunded" in (
        response.content
    )
    assert not stripe_refunds(emulator)


def test_a_forged_order_id_is_404(superuser_client, db):
    assert superuser_client.get(reverse("commerce_refund_order", args=[999999])).status_code == 404


def test_a_refund_without_csrf_is_refused(sold, emulator, django_user_model):
    boss = django_user_model.objects.create_superuser("boss2", "boss2@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(boss)
    response = client.post(refund_url(sold), {"kind": "full", "reason": "x"})
    assert response.status_code == 403 and not stripe_refunds(emulator)


def test_an_unanswered_refund_stays_pending_and_can_be_asked_again(
    superuser_client, sold, emulator
):
    emulator.fail_requests = 10  # more than the SDK's retries: Stripe may or may not have it
    response = superuser_client.post(
        refund_url(sold), form(superuser_client, sold, kind="full", reason="x")
    )
    assert response.status_code == 200 and b"Stripe" in response.content
    request = RefundRequest.objects.get()
    assert request.status == RefundRequest.Status.REQUESTED and request.error
    sold.refresh_from_db()
    assert refunds.refundable(sold) == 0  # still counted: it may have gone through
    emulator.fail_requests = 0
    superuser_client.post(refund_url(sold), form(superuser_client, sold, kind="full", reason="x"))
    assert RefundRequest.objects.get().status == RefundRequest.Status.SENT


def test_reconciliation_confirms_a_refund_whose_webhook_was_lost(
    superuser_client,
    sold,
    emulator,
):
    from commerce.payments import reconciliation

    superuser_client.post(refund_url(sold), form(superuser_client, sold, kind="full", reason="x"))
    reconciliation.reconcile()
    sold.refresh_from_db()
    assert sold.status == Order.Status.REFUNDED


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_admins_refunding_at_once_refund_once(course, emulator, django_user_model):
    order = start(Client(), course)
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    admins = [
        django_user_model.objects.create_superuser(f"a{i}", f"a{i}@example.com", "pw")
        for i in range(2)
    ]
    results = run_together(
        *[
            lambda admin=admin: refunds.request_refund(
                order.pk, amount=4900, reason="both clicked", actor=admin, basis="0.0"
            )
            for admin in admins
        ]
    )
    assert sorted(asked for _, asked in results) == [False, True]
    assert len(stripe_refunds(emulator)) == 1 and RefundRequest.objects.count() == 1


def test_a_confirmation_without_the_refund_list_still_frees_the_rest(
    superuser_client, sold, emulator
):
    """Stripe's charge.refunded carries no refunds list since API 2022-11-15."""
    superuser_client.post(
        refund_url(sold), form(superuser_client, sold, kind="partial", amount="40", reason="x")
    )
    for event in events(emulator, sold, "charge.refunded"):
        event["data"]["object"].pop("refunds", None)
        assert post_event(event).status_code == 200
    sold.refresh_from_db()
    assert sold.amount_refunded == 4000 and not sold.refunds.exists()
    assert refunds.refundable(sold) == 900  # $49 - $40, not counted twice
