"""Every state a buyer must know about reaches them once, as text and HTML, signed with the
site's name, with links on SITE_URL."""

import re

import pytest
from django.core import mail
from django.test import Client

from commerce.backoffice import actions
from commerce.mail import receipts
from commerce.models import Notification
from tests.helpers import deliver, events, start

SITE = "https://courses.example.org"


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = SITE
    settings.SITE_NAME = "Acme Academy"


def paid(course, emulator, email="buyer@example.com"):
    order = start(Client(), course, email)
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    mail.outbox.clear()  # the receipt
    order.refresh_from_db()
    return order


def sent(kind):
    return [m for m in mail.outbox if m.subject == kind]


def assert_well_formed(message, to="buyer@example.com"):
    html = message.alternatives[0][0]
    assert message.to == [to] and message.alternatives[0][1] == "text/html"
    for part in (message.body, html):
        assert "Acme Academy" in part
        assert "127.0.0.1" not in part and "example.com/" not in part and "testserver" not in part
    for link in re.findall(r"https?://[^\s\"'<]+", message.body + html):
        assert link.startswith(SITE), link


def test_a_slow_payment_method_is_told_it_is_processing_once(course, emulator):
    order = start(Client(), course, "buyer@example.com")
    emulator.pay(order.stripe_session_id, method="async")
    [completed] = events(emulator, order, "checkout.session.completed")
    deliver(completed, completed)
    [message] = sent("Your payment is being processed")
    assert_well_formed(message)
    assert order.public_id in message.body


def test_a_failed_payment_is_told_with_a_link_to_try_again(course, emulator):
    order = start(Client(), course, "buyer@example.com")
    emulator.pay(order.stripe_session_id, method="async")
    emulator.settle_async(order.stripe_session_id, succeeded=False)
    deliver(*events(emulator, order))
    [message] = sent("Your payment did not go through")
    assert_well_formed(message)
    assert SITE + course.url in message.body
    assert "not been charged" in message.body


def test_a_full_refund_is_told_once_and_says_access_ended(course, emulator):
    order = paid(course, emulator)
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id})
    [refunded] = events(emulator, order, "charge.refunded")
    deliver(refunded, refunded)
    [message] = sent("Your refund")
    assert_well_formed(message)
    assert "$49.00" in message.body and "access to the course has ended" in message.body


def test_a_partial_refund_says_how_much_in_all_and_that_access_stays(course, emulator):
    order = paid(course, emulator)
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id, "amount": 1000})
    deliver(*events(emulator, order, "charge.refunded"))
    [message] = sent("Your refund")
    assert "$10.00" in message.body and "$49.00" in message.body
    assert "You keep your access" in message.body


def test_each_partial_refund_is_told_separately(course, emulator):
    order = paid(course, emulator)
    for _ in range(2):
        emulator.create_refund({"payment_intent": order.stripe_payment_intent_id, "amount": 1000})
    deliver(*events(emulator, order, "charge.refunded"))
    assert len(sent("Your refund")) == 2


def test_a_dispute_suspends_then_a_win_restores_each_told_once(course, emulator):
    order = paid(course, emulator)
    dispute = emulator.create_dispute({"payment_intent": order.stripe_payment_intent_id})
    opened = events(emulator, order, "charge.dispute.created")
    deliver(*opened, *opened)
    [held] = sent("Your course access is on hold")
    assert_well_formed(held)
    emulator.close_dispute(dispute["id"], "won")
    deliver(*events(emulator, order, "charge.dispute.closed"))
    [back] = sent("Your course access is back")
    assert_well_formed(back)
    assert SITE + course.url in back.body


def test_a_lost_dispute_says_access_ended(course, emulator):
    order = paid(course, emulator)
    dispute = emulator.create_dispute({"payment_intent": order.stripe_payment_intent_id})
    emulator.close_dispute(dispute["id"], "lost")
    deliver(*events(emulator, order, "charge.dispute.created", "charge.dispute.closed"))
    [ended] = sent("Your course access has ended")
    assert_well_formed(ended)
    assert "payment returned to you" in ended.body.replace("\n", " ")


def test_access_revoked_by_the_owner_is_told(course, learner, emulator):
    from tests.helpers import entitle

    entitle(learner, course)
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        actions.revoke_access(course=course, user=learner, reason="shared account")
    [message] = sent("Your course access has ended")
    assert_well_formed(message, to=learner.email)
    assert course.title in message.body and "shared account" not in message.body


def test_a_lost_notification_task_is_sent_by_the_sweep(course, emulator):
    from datetime import timedelta

    from django.utils import timezone

    order = paid(course, emulator)
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id})
    from tests.helpers import post_event

    post_event(events(emulator, order, "charge.refunded")[0])  # on_commit never ran
    assert not mail.outbox
    Notification.objects.update(created_at=timezone.now() - timedelta(hours=1))
    assert receipts.send_missing_receipts()["notifications_enqueued"] == 1
    assert len(sent("Your refund")) == 1
    assert receipts.send_missing_receipts()["notifications_enqueued"] == 0


def test_sending_twice_sends_once(course, emulator):
    from commerce.mail import notifications

    order = paid(course, emulator)
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id})
    from tests.helpers import post_event

    post_event(events(emulator, order, "charge.refunded")[0])
    pk = Notification.objects.get().pk
    assert notifications.send(pk) == "sent" and notifications.send(pk) == "skipped"
    assert len(mail.outbox) == 1


def test_receipts_and_claim_links_are_signed_and_on_site_url(course, emulator):
    order = start(Client(), course, "buyer@example.com")
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    [receipt] = [m for m in mail.outbox if m.subject.startswith("Your receipt")]
    assert_well_formed(receipt)


def test_account_emails_have_an_html_part_in_the_site_layout(client, learner):
    from allauth.account.models import EmailAddress
    from django.urls import reverse

    EmailAddress.objects.create(user=learner, email=learner.email, verified=True, primary=True)
    client.post(reverse("account_reset_password"), {"email": learner.email})
    [message] = mail.outbox
    html, kind = message.alternatives[0]
    assert kind == "text/html" and "Acme Academy" in html
    links = re.findall(r"https?://[^\s\"'<]+", message.body + html)
    assert links and all(link.startswith(SITE) for link in links)


def test_a_receipt_sent_again_after_a_crash_is_the_same_message(db, django_user_model):
    """A worker killed after the mail server took the receipt but before the commit sends it
    again on retry: with the same Message-ID, which mail systems show once."""
    from django.core import mail

    from commerce.mail.emails import message_id, send

    for _ in range(2):
        send(
            to="buyer@example.com",
            subject="New lessons are open",
            template="commerce/email/lessons_opened",
            context={"course_title": "Python", "lessons": []},
            key="receipt.ord_abc",
        )
    first, second = mail.outbox[-2:]
    assert first.extra_headers["Message-ID"] == second.extra_headers["Message-ID"]
    assert first.message()["Message-ID"] == message_id("receipt.ord_abc")
    assert message_id("receipt.ord_abc") != message_id("receipt.ord_abd")
