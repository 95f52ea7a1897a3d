"""Chaos: hundreds of purchases through the real endpoints while Stripe misbehaves.

Each event is delivered 1-3 times at once, deliveries are shuffled across orders, 10% of
events are never delivered (the success page or reconciliation must recover them), some
handlers fail once (Stripe retries), and a few deliveries lose their database connection in
the middle of processing. Afterwards every order must be in the state its Stripe history
implies, with exactly the access that state allows. Bounded: about a minute on two cores.
"""

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core import mail
from django.db import close_old_connections, connection
from django.test import Client
from django.urls import reverse

from commerce.access import gifts
from commerce.models import Entitlement, Gift, Order, StripeEvent
from commerce.payments import ledger, reconciliation
from tests.helpers import make_bundle, make_course, post_event, postgres_only

pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]

PURCHASES = 300
TIME_LIMIT = 240  # seconds; the suite stops itself rather than hang


def expected(emulator, session):
    """What Stripe's own records say the order's final status and access must be."""
    if session["status"] == "expired":
        return "expired", None
    if session["status"] == "open":
        return "pending", None
    intent = emulator.payment_intents[session["payment_intent"]]
    if session["payment_status"] != "paid":
        return ("failed" if intent["status"] == "requires_payment_method" else "processing"), None
    charge = emulator.charges[intent["latest_charge"]]
    disputes = [d for d in emulator.disputes.values() if d["charge"] == charge["id"]]
    if any(d["status"] == "lost" for d in disputes):
        return "disputed", "revoked"
    if any(d["status"] not in ("won", "lost") for d in disputes):
        return "disputed", "suspended"
    if charge["amount_refunded"] >= charge["amount"]:
        return "refunded", None
    if charge["amount_refunded"]:
        return "partially_refunded", "active"
    return "paid", "active"


def test_chaos(catalog, emulator, monkeypatch, capsys):
    started = time.monotonic()
    rng = random.Random(20261123)
    courses = [
        make_course(catalog, slug=f"chaos-{i}", price=1000 + i * 500, lessons=1) for i in range(3)
    ]
    bundle = make_bundle(catalog, courses, price=3333, slug="chaos-bundle")

    # 1. Purchases through the real checkout endpoint (courses, bundles, gifts of either),
    # then what happens at Stripe.
    orders = []
    for i in range(PURCHASES):
        client = Client()
        product = bundle if rng.random() < 0.25 else rng.choice(courses)
        form = {"email": f"buyer{i}@example.com"}
        if rng.random() < 0.2:
            form.update(gift="1", recipient_email=f"friend{i}@example.com", gift_message="hi")
        response = client.post(reverse("checkout", args=[product.pk]), form)
        assert response.status_code == 303
        order = Order.objects.get(stripe_session_url=response["Location"])
        orders.append((client, order))
        roll = rng.random()
        if roll < 0.05:
            emulator.expire_session(order.stripe_session_id)
            continue
        if roll < 0.08:
            continue  # abandoned: stays pending
        if roll < 0.16:
            emulator.pay(order.stripe_session_id, method="async")
            emulator.settle_async(order.stripe_session_id, succeeded=rng.random() < 0.6)
        else:
            emulator.pay(order.stripe_session_id)
        session = emulator.sessions[order.stripe_session_id]
        if session["payment_status"] != "paid":
            continue
        target = {"payment_intent": session["payment_intent"]}
        fate = rng.random()
        if fate < 0.10:
            emulator.create_refund(target)
        elif fate < 0.18:
            emulator.create_refund({**target, "amount": "300"})
            if rng.random() < 0.5:
                emulator.create_refund(target)
        elif fate < 0.26:
            dispute = emulator.create_dispute(target)
            if rng.random() < 0.8:
                emulator.close_dispute(dispute["id"], rng.choice(["won", "lost"]))

    # 2. The delivery plan: duplicates, drops, shuffling, one-off failures, killed connections.
    events = list(emulator.events)
    dropped = {e["id"] for e in events if rng.random() < 0.10}
    fail_once = {e["id"] for e in events if e["id"] not in dropped and rng.random() < 0.05}
    candidates = sorted(e["id"] for e in events if e["id"] not in dropped | fail_once)
    kill_once = set(rng.sample(candidates, 8))
    planned = {"drop": len(dropped), "fail": len(fail_once), "kill": len(kill_once)}
    batches = [[e] * rng.randint(1, 3) for e in events if e["id"] not in dropped]
    rng.shuffle(batches)

    lock = threading.Lock()
    injected = Counter()
    real_handlers = dict(ledger.HANDLERS)

    def faulty(type_):
        def handler(event, row, source):
            with lock:
                fail = event["id"] in fail_once
                kill = event["id"] in kill_once
                fail_once.discard(event["id"])
                kill_once.discard(event["id"])
            if fail:
                injected["handler failures"] += 1
                raise RuntimeError("injected failure")
            if kill:
                injected["killed connections"] += 1
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
            return real_handlers[type_](event, row, source)

        return handler

    monkeypatch.setattr(ledger, "HANDLERS", {t: faulty(t) for t in real_handlers})

    def deliver(event):
        close_old_connections()
        try:
            return event["id"], post_event(event).status_code
        finally:
            connection.close()

    statuses = Counter()
    retry = []
    with ThreadPoolExecutor(max_workers=6) as pool:
        for batch in batches:
            assert time.monotonic() - started < TIME_LIMIT, "chaos suite ran out of time"
            for event_id, status in pool.map(deliver, batch):
                statuses[status] += 1
                if status != 200:
                    retry.append(event_id)
        # Stripe retries what was not acknowledged.
        by_id = {e["id"]: e for e in events}
        for event_id, status in pool.map(deliver, [by_id[i] for i in sorted(set(retry))]):
            statuses[f"retry {status}"] += 1

    # 3. Recovery for dropped deliveries: some buyers return to the success page, then the
    # reconciliation job runs (twice: the second run must change nothing).
    monkeypatch.setattr(ledger, "HANDLERS", real_handlers)
    returning = [(c, o) for c, o in orders if rng.random() < 0.5]
    for client, order in returning:
        client.get(reverse("checkout_success") + f"?session_id={order.stripe_session_id}")
    first = reconciliation.reconcile(since=None)
    second = reconciliation.reconcile(since=None)
    assert second.summary["orders_fixed"] == 0 and second.summary["events_recovered"] == 0
    reconciliation.retry_failed_events()

    # 4. Every order is exactly what its Stripe history implies.
    wrong, lost, duplicated = [], 0, 0
    final = Counter()
    for _, order in orders:
        order.refresh_from_db()
        session = emulator.sessions[order.stripe_session_id]
        want_status, want_access = expected(emulator, session)
        final[order.status] += 1
        entitlements = list(Entitlement.objects.filter(order_item__order=order))
        active = [e for e in entitlements if e.status == "active"]
        items = order.items.count()
        gift = Gift.objects.filter(order=order).first()
        owner = gift.recipient_email if gift else order.email
        if order.status != want_status:
            wrong.append((order.public_id, order.status, want_status))
        if any(e.email != owner or (gift and e.user_id) for e in entitlements):
            wrong.append((order.public_id, "granted to someone else"))
        if want_access == "active" and len(active) != items:
            lost += 1
        if want_access != "active" and active:
            duplicated += 1
        if len(active) > items:
            duplicated += 1
        if gift and want_access == "active" and not gift.delivered_at:
            wrong.append((order.public_id, "paid gift never delivered"))
        if want_access in ("suspended", "revoked") and any(
            e.status != want_access for e in entitlements
        ):
            wrong.append((order.public_id, [e.status for e in entitlements], want_access))
    receipts = Counter(
        m.subject.rsplit(" ", 1)[-1] for m in mail.outbox if m.subject.startswith("Your receipt")
    )
    paid_orders = [o for _, o in orders if o.paid_at]
    gift_mails = Counter(tuple(m.to) for m in mail.outbox if m.subject == "A course for you")
    gifts_delivered = Gift.objects.filter(delivered_at__isnull=False).count()
    ledger_rows = Counter(StripeEvent.objects.values_list("status", flat=True))

    with capsys.disabled():  # the counts are the point: show them in every run
        print(
            f"\nchaos: {PURCHASES} purchases, {len(events)} Stripe events, "
            f"{sum(len(b) for b in batches)} deliveries, planned {planned}, "
            f"injected {dict(injected)}, responses {dict(statuses)}"
        )
        print(
            f"chaos: final states {dict(final)}; ledger {dict(ledger_rows)}; "
            f"reconciliation fixed {first.summary['orders_fixed']} orders and recovered "
            f"{first.summary['events_recovered']} events; receipts {sum(receipts.values())}; "
            f"bundles {sum(1 for _, o in orders if o.bundle_id)}, "
            f"gifts {Gift.objects.count()} ({gifts_delivered} delivered)"
        )
        print(
            f"chaos: wrong {len(wrong)}, lost {lost}, duplicated {duplicated}, "
            f"in {time.monotonic() - started:.1f}s"
        )

    assert wrong == []
    assert lost == 0 and duplicated == 0
    assert injected["handler failures"] > 0 and injected["killed connections"] > 0
    assert StripeEvent.objects.count() == len(events)  # one ledger row per event
    assert ledger_rows.get("received", 0) == 0 and ledger_rows.get("failed", 0) == 0
    assert all(
        receipts[o.public_id] == 1
        for o in paid_orders
        if o.status in ("paid", "partially_refunded")
    )
    assert all(count == 1 for count in receipts.values())
    assert sum(gift_mails.values()) == gifts_delivered  # each delivered gift told once
    assert all(count == 1 for count in gift_mails.values())
    assert gifts.deliver_due() == {"due": 0, "delivered": 0}  # nothing left behind


MEMBERS = 40


def test_chaos_memberships(catalog, emulator, django_user_model, capsys):
    """Subscriptions renewed, failed, fixed and cancelled at Stripe; their events duplicated,
    shuffled and partly lost; afterwards every membership is what Stripe says it is."""
    from commerce.access import has_course_access
    from commerce.billing import memberships
    from commerce.models import Membership, MembershipPlan, PlanCourse, PlanPrice

    started = time.monotonic()
    rng = random.Random(20261128)
    course = make_course(catalog, slug="chaos-member", price=3000, lessons=1)
    plan = MembershipPlan.objects.create(name="Chaos")
    PlanCourse.objects.create(plan=plan, course=course)
    PlanPrice.objects.create(plan=plan, interval="month", amount=1200, currency="usd")
    PlanPrice.objects.create(plan=plan, interval="year", amount=12000, currency="usd")

    members = []
    for i in range(MEMBERS):
        user = django_user_model.objects.create_user(f"m{i}", f"m{i}@example.com", "pw")
        client = Client()
        client.force_login(user)
        response = client.post(
            reverse("membership_checkout", args=[plan.pk]),
            {"interval": rng.choice(["month", "year"])},
        )
        assert response.status_code == 303
        membership = Membership.objects.get(stripe_session_url=response["Location"])
        members.append((user, membership))
        if rng.random() < 0.1:
            continue  # never paid
        emulator.pay(membership.stripe_session_id)
        sub = emulator.sessions[membership.stripe_session_id]["subscription"]
        for _ in range(rng.randint(0, 3)):
            fate = rng.random()
            if fate < 0.2:
                emulator.failing_customers.add(emulator.subscriptions[sub]["customer"])
            elif fate < 0.3:
                emulator.failing_customers.discard(emulator.subscriptions[sub]["customer"])
            elif fate < 0.45:
                emulator.update_subscription(sub, {"cancel_at_period_end": "true"})
            elif fate < 0.5:
                emulator.update_subscription(sub, {"cancel_at_period_end": "false"})
            elif fate < 0.55:
                emulator.cancel_subscription(sub)
            else:
                emulator.renew(sub)

    events = list(emulator.events)
    delivered = [e for e in events if rng.random() >= 0.1]  # a tenth never arrives
    batches = [[e] * rng.randint(1, 3) for e in delivered]
    rng.shuffle(batches)

    def deliver_one(event):
        close_old_connections()
        try:
            return post_event(event).status_code
        finally:
            connection.close()

    statuses = Counter()
    with ThreadPoolExecutor(max_workers=6) as pool:
        for batch in batches:
            assert time.monotonic() - started < TIME_LIMIT, "chaos ran out of time"
            for status in pool.map(deliver_one, batch):
                statuses[status] += 1
    fixed = memberships.reconcile()

    wrong = []
    for user, membership in members:
        membership.refresh_from_db()
        session = emulator.sessions[membership.stripe_session_id]
        sub = emulator.subscriptions.get(session.get("subscription") or "")
        want = sub["status"] if sub else "checkout"
        if membership.status != want:
            wrong.append((membership.public_id, membership.status, want))
        opens = want in ("active", "trialing", "past_due")
        if has_course_access(user, course) != opens:
            wrong.append((membership.public_id, "access", opens))
    final = Counter(m.status for _, m in members)
    with capsys.disabled():
        print(
            f"\nchaos memberships: {MEMBERS} learners, {len(events)} Stripe events, "
            f"{sum(len(b) for b in batches)} deliveries ({len(events) - len(delivered)} lost), "
            f"responses {dict(statuses)}; reconciliation fixed {fixed['memberships_fixed']}; "
            f"final {dict(final)}; wrong {len(wrong)} in {time.monotonic() - started:.1f}s"
        )
    assert wrong == []
    assert set(statuses) == {200}
