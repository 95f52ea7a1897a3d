"""What keeps orders consistent with Stripe when webhooks are late, lost or failed.

Every function here is idempotent and safe to run in several workers at once: the real work
goes through fulfilment (row locks) and the ledger (unique event ids).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from wagtail.log_actions import log as audit_log

from commerce.models import Order, OrderEvent, ReconciliationRun, StripeEvent
from commerce.payments import fulfilment, gateway, ledger
from commerce.payments.gateway import StripeObject

if TYPE_CHECKING:
    from base.models import User

log = logging.getLogger(__name__)

HANDLED_TYPES = sorted(ledger.HANDLERS)


# --- expiry --------------------------------------------------------------------------------


def expire_pending_orders(
    *, now: datetime | None = None, dry_run: bool = False, source: str = OrderEvent.Source.SYSTEM
) -> dict[str, int]:
    """Close pending orders past their TTL, at Stripe first, so nobody pays a dead order.

    Stripe refuses to expire a session that was completed meanwhile: then the session is
    fulfilled instead, so a late payment is never lost.
    """
    now = now or timezone.now()
    due = list(
        Order.objects.filter(status=Order.Status.PENDING, expires_at__lte=now).values_list(
            "pk", "public_id", "stripe_session_id"
        )
    )
    result = {"due": len(due), "expired": 0, "fulfilled": 0, "errors": 0}
    if dry_run:
        return result
    for pk, public_id, session_id in due:
        try:
            if not session_id:
                _expire_without_session(pk, source)
                result["expired"] += 1
                continue
            try:
                session = gateway.expire_checkout_session(
                    session_id, idempotency_key=f"expire-{public_id}"
                )
            except gateway.GatewayError as exc:
                if exc.retryable:
                    raise
                session = gateway.retrieve_checkout_session(session_id)
            order = fulfilment.fulfil_checkout_session(session, source=source)
            result["fulfilled" if order.paid_at else "expired"] += 1
        except (gateway.GatewayError, fulfilment.Ignored) as exc:
            result["errors"] += 1
            log.warning("could not expire order %s: %s", public_id, exc)
    log.info("expire_pending_orders: %s", result)
    return result


def _expire_without_session(pk: int, source: str) -> None:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=pk)
        if order.status != Order.Status.PENDING or order.stripe_session_id:
            return
        order.expired_at = timezone.now()
        fulfilment._settle(order, ["expired: no checkout session was ever opened"], source=source)


# --- reconciliation ------------------------------------------------------------------------


class Summary(TypedDict):
    """A reconciliation run's report (``ReconciliationRun.summary``)."""

    sessions_checked: int
    orders_fixed: int
    events_seen: int
    events_recovered: int
    memberships_checked: int
    memberships_fixed: int
    fixed: list[str]


def reconcile(
    *, since: datetime | None = None, dry_run: bool = False, triggered_by: str = "schedule"
) -> ReconciliationRun:
    """Make our state match Stripe's for recent orders and events; report what changed."""
    since = since or timezone.now() - timedelta(days=settings.RECONCILE_DAYS)
    run = ReconciliationRun.objects.create(
        since=since, dry_run=dry_run, triggered_by=triggered_by[:100]
    )
    summary: Summary = {
        "sessions_checked": 0,
        "orders_fixed": 0,
        "events_seen": 0,
        "events_recovered": 0,
        "memberships_checked": 0,
        "memberships_fixed": 0,
        "fixed": [],
    }
    source = OrderEvent.Source.RECONCILIATION
    try:
        open_orders = Order.objects.filter(
            status__in=[Order.Status.PENDING, Order.Status.PROCESSING],
            created_at__gte=since,
        ).exclude(stripe_session_id=None)
        # Read before the loop, not through a cursor held across it: each order calls Stripe
        # and may queue tasks that recycle this connection (django-q2 closes old ones).
        for order in list(open_orders):
            session = gateway.retrieve_checkout_session(order.stripe_session_id)
            summary["sessions_checked"] += 1
            if dry_run:
                if _session_would_change(order, session):
                    summary["orders_fixed"] += 1
                    summary["fixed"].append(order.public_id)
                continue
            before = order.status
            try:
                after = fulfilment.fulfil_checkout_session(session, source=source).status
            except fulfilment.Ignored as reason:
                log.warning("reconcile: order %s: %s", order.public_id, reason)
                continue
            if after != before:
                summary["orders_fixed"] += 1
                summary["fixed"].append(f"{order.public_id}: {before} -> {after}")
        for event in _events_since(since):
            summary["events_seen"] += 1
            known = StripeEvent.objects.filter(
                event_id=event["id"],
                status__in=[StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED],
            ).exists()
            if known:
                continue
            summary["events_recovered"] += 1
            summary["fixed"].append(f"event {event['id']} ({event['type']})")
            if not dry_run:
                ledger.process(event, source=source)
        if not dry_run:  # memberships: each live one fetched from Stripe and brought in line
            from commerce.billing import memberships

            checked = memberships.reconcile(source)
            summary["memberships_checked"] = checked["memberships_checked"]
            summary["memberships_fixed"] = checked["memberships_fixed"]
        run.ok = True
    except Exception as exc:
        run.error = f"{exc.__class__.__name__}: {exc}"[:2000]
        log.exception("reconciliation failed")
        raise
    finally:
        summary["fixed"] = summary["fixed"][:200]
        run.summary = summary
        run.finished_at = timezone.now()
        run.save()
    log.info(
        "reconcile since %s: %s",
        since.isoformat(),
        {k: v for k, v in summary.items() if k != "fixed"},
    )
    return run


def _session_would_change(order: Order, session: StripeObject) -> bool:
    paid = session.get("status") == "complete" and session.get("payment_status") in (
        fulfilment.PAID_STATUSES
    )
    return paid or session.get("status") == "expired"


def _events_since(since: datetime) -> Iterator[StripeObject]:
    """Every handled event Stripe still holds since ``since``, oldest first."""
    params = {"types": HANDLED_TYPES, "created": {"gte": int(since.timestamp())}, "limit": 100}
    collected: list[StripeObject] = []
    while True:
        page = gateway.list_events(**params)
        data = page.get("data") or []
        collected.extend(data)
        if not page.get("has_more") or not data:
            break
        params["starting_after"] = data[-1]["id"]
    return reversed(collected)


def last_successful_reconciliation() -> ReconciliationRun | None:
    return ReconciliationRun.objects.filter(ok=True, dry_run=False).first()


# --- the ledger's failures -------------------------------------------------------------------


def retry_failed_events(*, now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Reprocess failed ledger rows whose backoff has elapsed; dead after MAX_ATTEMPTS."""
    now = now or timezone.now()
    due = (
        StripeEvent.objects.filter(status=StripeEvent.Status.FAILED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("received_at")[:limit]
    )
    result = {"retried": 0, "processed": 0, "failed": 0}
    for row in due:
        result["retried"] += 1
        try:
            ledger.process(row.payload)
            result["processed"] += 1
        except Exception:  # noqa: BLE001 - recorded on the row by the ledger
            result["failed"] += 1
    log.info("retry_failed_events: %s", result)
    return result


def replay_event(
    event_id: str, *, actor: User | None = None, source: str = OrderEvent.Source.ADMIN
) -> str:
    """Run a stored event through processing again (a failed, dead or suspicious one)."""
    row = StripeEvent.objects.get(event_id=event_id)
    status = ledger.process(row.payload, force=True, source=source)
    audit_log(
        instance=row,
        action="commerce.replay",
        user=actor,
        data={"event_id": event_id, "result": status},
    )
    return status


# --- receipts --------------------------------------------------------------------------------
