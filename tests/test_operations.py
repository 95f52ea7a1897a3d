"""Scheduled jobs, commands and the audit trail of operators' actions."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule
from wagtail.models import ModelLogEntry

from commerce.mail import receipts
from commerce.management.commands.setup_schedules import SCHEDULES
from commerce.models import Entitlement, Order, OrderEvent, ReconciliationRun, StripeEvent
from commerce.payments import reconciliation
from tests.helpers import deliver, events, post_event, start


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- expiry --------------------------------------------------------------------------------


def test_expiry_closes_overdue_orders_at_stripe_and_here(client, course, emulator):
    order = start(client, course)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    result = reconciliation.expire_pending_orders()
    order.refresh_from_db()
    assert result == {"due": 1, "expired": 1, "fulfilled": 0, "errors": 0}
    assert order.status == Order.Status.EXPIRED
    assert emulator.sessions[order.stripe_session_id]["status"] == "expired"


def test_expiry_leaves_orders_inside_their_ttl(client, course, emulator):
    order = start(client, course)
    assert reconciliation.expire_pending_orders()["due"] == 0
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING


def test_expiry_fulfils_an_order_that_was_paid_at_the_last_moment(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)  # webhook lost
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    result = reconciliation.expire_pending_orders()
    order.refresh_from_db()
    assert result["fulfilled"] == 1 and order.status == Order.Status.PAID
    assert Entitlement.objects.filter(status="active").count() == 1


def test_expiry_without_a_session_expires_locally(course, emulator):
    order = Order.objects.create(
        email="x@example.com",
        currency="usd",
        amount_subtotal=100,
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    reconciliation.expire_pending_orders()
    order.refresh_from_db()
    assert order.status == Order.Status.EXPIRED


def test_the_expiry_command_dry_run_changes_nothing(client, course, emulator):
    order = start(client, course)
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert "[dry run] due: 1" in run("expire_pending_orders", "--dry-run")
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert "expired: 1" in run("expire_pending_orders")


# --- reconciliation ------------------------------------------------------------------------


def test_reconciliation_recovers_a_purchase_whose_webhook_never_arrived(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    run_ = reconciliation.reconcile()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Entitlement.objects.filter(status="active").count() == 1
    assert run_.ok and run_.summary["orders_fixed"] == 1
    assert OrderEvent.objects.filter(order=order, source="reconciliation").exists()


@pytest.mark.django_db(transaction=True)
def test_reconciliation_survives_its_connection_being_recycled_between_orders(
    course, emulator, monkeypatch
):
    """Each order's receipt task may close an old connection (django-q2 does before a task;
    the test settings run tasks inline): the loop must not hold a database cursor across it."""
    orders = [start(Client(), course, email=f"r{i}@example.com") for i in range(3)]
    for order in orders:
        emulator.pay(order.stripe_session_id)
    real = receipts.send_receipt

    def receipt_then_recycle(order_id):
        connection.close()  # what close_old_connections does once CONN_MAX_AGE has passed
        return real(order_id)

    monkeypatch.setattr(receipts, "send_receipt", receipt_then_recycle)
    run_ = reconciliation.reconcile()
    assert run_.ok and run_.summary["orders_fixed"] == 3
    assert Order.objects.filter(status=Order.Status.PAID).count() == 3


def test_reconciling_twice_changes_nothing_the_second_time(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    reconciliation.reconcile()
    trail = OrderEvent.objects.count()
    second = reconciliation.reconcile()
    assert second.summary["orders_fixed"] == 0 and second.summary["events_recovered"] == 0
    assert OrderEvent.objects.count() == trail
    assert Entitlement.objects.count() == 1


def test_reconciliation_recovers_a_refund_whose_webhook_never_arrived(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    emulator.create_refund(
        {"payment_intent": emulator.sessions[order.stripe_session_id]["payment_intent"]}
    )
    run_ = reconciliation.reconcile()
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert Entitlement.objects.get().status == "revoked"
    assert run_.summary["events_recovered"] >= 1


def test_a_reconciliation_dry_run_reports_and_changes_nothing(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    output = run("reconcile_stripe", "--dry-run", "--since", "2d")
    assert "[dry run]" in output and "1 order(s) fixed" in output
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING and not StripeEvent.objects.exists()


def test_the_reconcile_command_prints_what_it_fixed(client, course, emulator):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    output = run("reconcile_stripe")
    assert f"{order.public_id}: pending -> paid" in output


def test_the_reconcile_command_refuses_a_bad_since(db):
    with pytest.raises(CommandError, match="--since"):
        run("reconcile_stripe", "--since", "yesterday-ish")


def test_the_reconcile_command_fails_clearly_when_stripe_is_down(client, course, emulator):
    start(client, course)
    emulator.fail_requests = 50
    with pytest.raises(CommandError, match="Stripe could not be reached"):
        run("reconcile_stripe")
    assert ReconciliationRun.objects.get().ok is False


def test_health_reports_the_last_successful_reconciliation(client, course, emulator):
    assert client.get("/healthz").json()["last_reconciliation"] is None
    reconciliation.reconcile()
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["checks"]["broker"] == "ok"
    assert body["last_reconciliation"] is not None


# --- failed events -------------------------------------------------------------------------


def failing(monkeypatch):
    from commerce.payments import fulfilment

    real = fulfilment.fulfil_checkout_session

    def boom(*args, **kwargs):
        raise RuntimeError("downstream outage")

    monkeypatch.setattr(fulfilment, "fulfil_checkout_session", boom)
    return lambda: monkeypatch.setattr(fulfilment, "fulfil_checkout_session", real)


def test_a_failed_event_is_retried_after_its_backoff(client, course, emulator, monkeypatch):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    restore = failing(monkeypatch)
    assert post_event(events(emulator, order)[0]).status_code == 500
    assert reconciliation.retry_failed_events()["retried"] == 0  # backoff not elapsed
    restore()
    later = timezone.now() + timedelta(hours=1)
    assert reconciliation.retry_failed_events(now=later) == {
        "retried": 1,
        "processed": 1,
        "failed": 0,
    }
    row = StripeEvent.objects.get()
    assert (row.status, row.attempts) == ("processed", 2)
    assert Entitlement.objects.filter(status="active").count() == 1


def test_an_event_that_keeps_failing_is_marked_dead(client, course, emulator, monkeypatch):
    from commerce.payments.ledger import MAX_ATTEMPTS

    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    failing(monkeypatch)
    post_event(events(emulator, order)[0])
    for _ in range(MAX_ATTEMPTS + 2):
        reconciliation.retry_failed_events(now=timezone.now() + timedelta(days=2))
    row = StripeEvent.objects.get()
    assert row.status == "dead" and row.attempts == MAX_ATTEMPTS


def test_replaying_an_event_by_command(client, course, emulator, monkeypatch):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    restore = failing(monkeypatch)
    event = events(emulator, order)[0]
    post_event(event)
    restore()
    assert "replayed: processed" in run("replay_stripe_event", event["id"])
    assert Entitlement.objects.filter(status="active").count() == 1


def test_replaying_an_unknown_event_fails_clearly(db):
    with pytest.raises(CommandError, match="No stored event"):
        run("replay_stripe_event", "evt_missing")


def test_replay_dry_run_only_shows_the_event(client, course, emulator, monkeypatch):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    failing(monkeypatch)
    event = events(emulator, order)[0]
    post_event(event)
    output = run("replay_stripe_event", event["id"], "--dry-run")
    assert "failed" in output and "downstream outage" in output
    assert StripeEvent.objects.get().attempts == 1


# --- receipts ------------------------------------------------------------------------------


def test_a_paid_order_whose_receipt_was_lost_gets_one(client, course, emulator, mailoutbox):
    order = start(client, course)
    emulator.pay(order.stripe_session_id)
    post_event(events(emulator, order)[0])  # on_commit never ran: the receipt was not sent
    Order.objects.filter(pk=order.pk).update(paid_at=timezone.now() - timedelta(hours=1))
    assert receipts.send_missing_receipts() == {
        "enqueued": 1,
        "refunds_enqueued": 0,
        "notifications_enqueued": 0,
    }
    assert len(mailoutbox) == 1
    assert receipts.send_missing_receipts() == {
        "enqueued": 0,
        "refunds_enqueued": 0,
        "notifications_enqueued": 0,
    }


# --- access by hand ------------------------------------------------------------------------


@pytest.fixture
def learner(django_user_model):
    return django_user_model.objects.create_user("learner", "learner@example.com", "pw")


def test_grant_access_by_email_is_audited(course, learner):
    output = run(
        "grant_access",
        "--email",
        "Learner@Example.com",
        "--course",
        str(course.pk),
        "--reason",
        "conference speaker",
    )
    assert "granted access" in output
    entitlement = Entitlement.objects.get()
    assert (entitlement.user, entitlement.source, entitlement.reason) == (
        learner,
        "admin",
        "conference speaker",
    )
    entry = ModelLogEntry.objects.get(action="commerce.grant")
    assert entry.data["reason"] == "conference speaker" and entry.data["via"] == "command"


def test_grant_access_to_a_guest_address_and_by_course_slug(course):
    run("grant_access", "--email", "guest@example.com", "--course", course.slug, "--reason", "gift")
    assert Entitlement.objects.get().user is None


def test_granting_twice_grants_once(course, learner):
    for _ in range(2):
        run("grant_access", "--user", "learner", "--course", str(course.pk), "--reason", "x")
    assert Entitlement.objects.count() == 1


def test_revoke_access_is_audited(course, learner):
    run("grant_access", "--user", "learner", "--course", str(course.pk), "--reason", "trial")
    run("revoke_access", "--user", "learner", "--course", str(course.pk), "--reason", "ended")
    entitlement = Entitlement.objects.get()
    assert (entitlement.status, entitlement.reason) == ("revoked", "ended")
    assert ModelLogEntry.objects.filter(action="commerce.revoke").count() == 1


@pytest.mark.parametrize(
    "args,message",
    [
        (["--user", "nobody", "--course", "{course}", "--reason", "x"], "No user"),
        (["--email", "learner@example.com", "--course", "999999", "--reason", "x"], "No course"),
        (["--email", "not-an-address", "--course", "{course}", "--reason", "x"], "not an e-mail"),
        (["--email", "learner@example.com", "--course", "{course}", "--reason", " "], "reason"),
    ],
)
def test_access_commands_refuse_bad_arguments(course, learner, args, message):
    args = [a.format(course=course.pk) for a in args]
    with pytest.raises(CommandError, match=message):
        run("grant_access", *args)
    assert not Entitlement.objects.exists()


def test_revoking_access_nobody_has_fails_clearly(course, learner):
    with pytest.raises(CommandError, match="no active access"):
        run("revoke_access", "--user", "learner", "--course", str(course.pk), "--reason", "x")


def test_access_commands_dry_run(course, learner):
    assert "[dry run]" in run(
        "grant_access",
        "--user",
        "learner",
        "--course",
        str(course.pk),
        "--reason",
        "x",
        "--dry-run",
    )
    assert not Entitlement.objects.exists()


# --- schedules -----------------------------------------------------------------------------


def test_setup_schedules_is_idempotent(db):
    run("setup_schedules")
    first = list(Schedule.objects.values_list("name", "func", "minutes").order_by("name"))
    run("setup_schedules")
    assert list(Schedule.objects.values_list("name", "func", "minutes").order_by("name")) == first
    assert len(first) == len(SCHEDULES) == 6


def test_setup_schedules_updates_a_changed_schedule(db):
    run("setup_schedules")
    Schedule.objects.filter(name="commerce: reconcile with Stripe").update(minutes=999)
    run("setup_schedules")
    assert Schedule.objects.get(name="commerce: reconcile with Stripe").minutes == 15


def test_scheduled_task_functions_run(client, course, emulator):
    from commerce import tasks

    assert tasks.expire_pending_orders_job()["due"] == 0
    assert tasks.reconcile_job()["sessions_checked"] == 0
    assert tasks.retry_failed_events_job()["retried"] == 0
    assert tasks.send_missing_receipts_job() == {
        "enqueued": 0,
        "refunds_enqueued": 0,
        "notifications_enqueued": 0,
    }


def test_the_stripe_emulator_cannot_be_started_without_a_webhook_url():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "devtools.stripe_emulator"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "--webhook-url" in result.stderr


def test_an_unknown_client_cannot_read_order_status(client, course, emulator):
    order = start(client, course)
    assert Client().get(f"/checkout/orders/{order.public_id}/status/").status_code == 404
