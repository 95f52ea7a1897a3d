"""Gifts: bought by one person, owned by the recipient's address, delivered on its day once,
claimed with the usual link, and revoked with a refund."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from commerce import tasks
from commerce.access import claims, gifts
from commerce.models import Entitlement, Gift, Notification, Order
from commerce.payments import reconciliation
from tests.helpers import (
    deliver,
    entitle,
    events,
    make_bundle,
    make_course,
    pay,
    postgres_only,
    run_together,
)

RECIPIENT = "friend@example.com"


def gift_form(**fields):
    return {
        "gift": "1",
        "email": "buyer@example.com",
        "recipient_email": RECIPIENT,
        "recipient_name": "Sam",
        "gift_message": "Happy birthday!\nEnjoy it.",
        **fields,
    }


def buy_gift(client, product, **fields):
    response = client.post(reverse("checkout", args=[product.pk]), gift_form(**fields))
    assert response.status_code == 303, response.content
    return Order.objects.get(stripe_session_url=response["Location"])


def gift_mails():
    return [m for m in mail.outbox if m.to == [RECIPIENT]]


def claim_path(message):
    return re.search(r"http://\S+(/claim/\S+/)", message.body).group(1)


@pytest.fixture
def buyer(django_user_model):
    return django_user_model.objects.create_user("buyer", "buyer@example.com", "pw")


@pytest.fixture
def buyer_client(buyer):
    client = Client()
    client.force_login(buyer)
    return client


# --- buying --------------------------------------------------------------------------------


def test_a_gift_order_names_its_recipient_and_delivery_day(course, emulator):
    order = buy_gift(Client(), course)
    gift = order.gift
    assert (gift.recipient_email, gift.recipient_name) == (RECIPIENT, "Sam")
    assert gift.message == "Happy birthday!\nEnjoy it." and gift.deliver_on == timezone.localdate()
    assert order.email == "buyer@example.com"
    assert emulator.line_items[order.stripe_session_id][0]["description"] == "Gift: Python"


def test_the_paid_gift_belongs_to_the_recipient_never_the_buyer(
    buyer_client, buyer, course, emulator
):
    order = pay(emulator, buy_gift(buyer_client, course))
    grant = Entitlement.objects.get()
    assert (grant.user, grant.email, grant.order_item.order) == (None, RECIPIENT, order)
    assert not Entitlement.objects.filter(user=buyer).exists()
    assert buyer_client.get(course.lessons().last().url).status_code == 403


def test_the_buyer_gets_a_receipt_without_a_claim_link(course, emulator):
    pay(emulator, buy_gift(Client(), course))
    [receipt] = [m for m in mail.outbox if m.to == ["buyer@example.com"]]
    assert f"a gift for {RECIPIENT}" in receipt.body and "/claim/" not in receipt.body


def test_a_gift_for_today_is_delivered_at_once_with_the_message_and_a_claim_link(course, emulator):
    order = pay(emulator, buy_gift(Client(), course))
    [message] = gift_mails()
    assert "Happy birthday!" in message.body and "/claim/" in message.body
    assert "Hello Sam" in message.body and "buyer@example.com" not in message.body
    assert Gift.objects.get(order=order).delivered_at is not None


def test_a_gift_for_later_waits_for_its_day_and_goes_out_once(course, emulator):
    later = timezone.localdate() + timedelta(days=3)
    order = pay(emulator, buy_gift(Client(), course, deliver_on=later.isoformat()))
    assert gift_mails() == [] and gifts.deliver_due() == {"due": 0, "delivered": 0}
    Gift.objects.filter(order=order).update(deliver_on=timezone.localdate())  # the day comes
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.deliver_gifts_job() == {"due": 1, "delivered": 1}
    with TestCase.captureOnCommitCallbacks(execute=True):
        assert tasks.deliver_gifts_job() == {"due": 0, "delivered": 0}
        assert tasks.deliver_gift(order.pk) == "skipped"
    assert len(gift_mails()) == 1


def test_a_gift_waiting_for_its_day_cannot_be_found_or_claimed_early(course, emulator):
    later = timezone.localdate() + timedelta(days=3)
    pay(emulator, buy_gift(Client(), course, deliver_on=later.isoformat()))
    recipient = get_user_model().objects.create_user("friend", RECIPIENT, "pw")
    assert not claims.guest_purchases_exist(RECIPIENT)
    assert claims.attach_guest_purchases(recipient, RECIPIENT, proof="test") == 0
    assert Entitlement.objects.get().user is None


def test_the_recipient_claims_the_gift_and_the_buyer_sees_it_claimed(
    buyer_client, course, emulator
):
    order = pay(emulator, buy_gift(buyer_client, course))
    recipient = get_user_model().objects.create_user("friend", RECIPIENT, "pw")
    client = Client()
    client.force_login(recipient)
    response = client.post(claim_path(gift_mails()[0]))
    assert response.status_code == 302
    assert Entitlement.objects.active().get().user == recipient
    assert client.get(course.lessons().last().url).status_code == 200
    page = buyer_client.get(reverse("my_courses")).content.decode()
    assert f"gift for {RECIPIENT}, claimed" in page
    detail = buyer_client.get(reverse("order_detail", args=[order.public_id])).content.decode()
    assert "They have claimed it." in detail and "Send their e-mail again" not in detail


def test_refunding_a_gift_revokes_the_recipients_access(course, emulator):
    order = pay(emulator, buy_gift(Client(), course))
    recipient = get_user_model().objects.create_user("friend", RECIPIENT, "pw")
    claims.attach_guest_purchases(recipient, RECIPIENT, proof="test")
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id})
    deliver(*events(emulator, order, "charge.refunded"))
    assert not Entitlement.objects.active().exists()
    assert Entitlement.objects.get().user == recipient


def test_a_gift_refunded_before_its_day_is_never_delivered(course, emulator):
    later = timezone.localdate() + timedelta(days=3)
    order = pay(emulator, buy_gift(Client(), course, deliver_on=later.isoformat()))
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id})
    deliver(*events(emulator, order, "charge.refunded"))
    Gift.objects.filter(order=order).update(deliver_on=timezone.localdate())
    assert gifts.deliver_due() == {"due": 0, "delivered": 0} and gift_mails() == []


def test_a_bundle_can_be_given(catalog, course, emulator):
    other = make_course(catalog, slug="django", price=2900)
    bundle = make_bundle(catalog, [course, other], price=5900)
    pay(emulator, buy_gift(Client(), bundle))
    assert set(Entitlement.objects.values_list("email", flat=True)) == {RECIPIENT}
    assert Entitlement.objects.count() == 2
    [message] = gift_mails()
    assert "Bundle" in message.body and "Python" in message.body and "Django" in message.body


def test_each_gift_checkout_is_its_own_order(client, course, emulator):
    assert buy_gift(client, course) != buy_gift(client, course)


def test_reconciliation_recovers_a_gift_whose_webhook_never_arrived(course, emulator):
    order = buy_gift(Client(), course)
    emulator.pay(order.stripe_session_id)
    with TestCase.captureOnCommitCallbacks(execute=True):
        reconciliation.reconcile()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Entitlement.objects.get().email == RECIPIENT and len(gift_mails()) == 1


# --- duplicates ----------------------------------------------------------------------------


def test_a_logged_in_buyer_cannot_give_themselves_a_course_they_have(
    buyer_client, buyer, course, emulator
):
    entitle(buyer, course)
    response = buyer_client.post(
        reverse("checkout", args=[course.pk]), gift_form(recipient_email="Buyer@Example.com")
    )
    assert response.status_code == 400 and b"your own address" in response.content
    assert not Order.objects.exists() and emulator.requests == []


def test_a_gift_to_an_address_that_has_the_course_is_refunded_like_any_duplicate(course, emulator):
    owner = get_user_model().objects.create_user("friend", RECIPIENT, "pw")
    entitle(owner, course)
    order = pay(emulator, buy_gift(Client(), course))
    assert order.already_owned_at is not None and len(emulator.refunds) == 1
    assert gift_mails() == []
    [told] = [m for m in mail.outbox if m.to == ["buyer@example.com"]]
    assert "refunded" in told.body and "Nothing was sent to them" in told.body


def test_a_free_course_cannot_be_bought_as_a_gift(free_course, emulator):
    response = Client().post(reverse("checkout", args=[free_course.pk]), gift_form())
    assert response.status_code == 400 and not Order.objects.exists()


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields,error",
    [
        ({"recipient_email": "not-an-address"}, "Enter a valid email address."),
        ({"recipient_email": ""}, "This field is required."),
        ({"deliver_on": "2001-01-01"}, "The delivery date is in the past."),
        ({"deliver_on": "9999-12-31"}, "Pick a delivery date within a year."),
        ({"deliver_on": "tomorrow"}, "Enter a valid date."),
        ({"gift_message": "x" * 501}, "at most 500 characters"),
        ({"gift_message": "hi\x07there"}, "may not contain control characters"),
        ({"gift_message": "line\u2028break"}, "may not contain control characters"),
        ({"recipient_name": "Sam\nBcc: x@example.com"}, "may not contain control characters"),
        ({"email": "bad buyer"}, "Enter a valid email address."),
    ],
)
def test_bad_gift_input_is_refused_on_the_page_and_opens_no_order(course, emulator, fields, error):
    response = Client().post(reverse("checkout", args=[course.pk]), gift_form(**fields))
    assert response.status_code == 400 and error in response.content.decode()
    assert not Order.objects.exists() and emulator.requests == []


def test_a_delivery_date_a_year_ahead_is_accepted(course, emulator):
    day = timezone.localdate() + timedelta(days=365)
    assert buy_gift(Client(), course, deliver_on=day.isoformat()).gift.deliver_on == day


# --- sending the recipient's e-mail again --------------------------------------------------


def resend_url(order):
    return reverse("resend_gift", args=[order.public_id])


def test_the_buyer_can_send_the_recipients_email_again_once_an_hour(buyer_client, course, emulator):
    order = pay(emulator, buy_gift(buyer_client, course))
    with TestCase.captureOnCommitCallbacks(execute=True):
        first = buyer_client.post(resend_url(order), follow=True)
    assert b"We have e-mailed friend@example.com again" in first.content
    with TestCase.captureOnCommitCallbacks(execute=True):
        second = buyer_client.post(resend_url(order), follow=True)
    assert b"sent again recently" in second.content
    assert len(gift_mails()) == 2


def test_a_gift_not_yet_delivered_is_not_sent_early(buyer_client, course, emulator):
    later = timezone.localdate() + timedelta(days=3)
    order = pay(emulator, buy_gift(buyer_client, course, deliver_on=later.isoformat()))
    response = buyer_client.post(resend_url(order), follow=True)
    assert b"The gift goes out on" in response.content and gift_mails() == []


def test_another_account_cannot_resend_someone_elses_gift(buyer_client, course, emulator):
    order = pay(emulator, buy_gift(buyer_client, course))
    other = Client()
    other.force_login(get_user_model().objects.create_user("nosy", "nosy@example.com", "pw"))
    assert other.post(resend_url(order)).status_code == 404
    assert other.get(reverse("order_detail", args=[order.public_id])).status_code == 404


def test_resending_needs_a_login_a_real_order_and_csrf(buyer, buyer_client, course, emulator):
    order = pay(emulator, buy_gift(buyer_client, course))
    before = Notification.objects.count()
    assert Client().post(resend_url(order)).status_code == 302  # to the login page
    assert buyer_client.post(reverse("resend_gift", args=["ord_forged0000000"])).status_code == 404
    assert buyer_client.post(reverse("resend_gift", args=["1 OR 1=1"])).status_code == 404
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(buyer)
    assert strict.post(resend_url(order)).status_code == 403
    assert buyer_client.get(resend_url(order)).status_code == 405
    assert Notification.objects.count() == before


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_scheduled_job_and_the_payment_task_racing_deliver_once(course, emulator):
    order = buy_gift(Client(), course)
    emulator.pay(order.stripe_session_id)
    [completed] = events(emulator, order, "checkout.session.completed")
    from tests.helpers import post_event

    Gift.objects.filter(order=order).update(deliver_on=timezone.localdate() + timedelta(days=1))
    assert post_event(completed).status_code == 200
    Gift.objects.filter(order=order).update(deliver_on=timezone.localdate())
    results = run_together(*[lambda: gifts.deliver(order.pk)] * 4)
    assert sorted(results) == ["delivered", "skipped", "skipped", "skipped"]
    assert Notification.objects.filter(kind="gift").count() == 1
