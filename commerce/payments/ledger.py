"""The webhook ledger: verify, record once, process, and remember failures.

The ledger row is inserted inside the processing transaction, so its unique index is the lock:
a concurrent duplicate waits on the insert and then finds the event already processed. A
failure rolls everything back and is then recorded in a transaction of its own.
"""

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from base.db import insert_new, update_row
from commerce.billing import memberships
from commerce.models import Order, OrderEvent, StripeEvent
from commerce.payments import fulfilment, gateway
from commerce.payments.gateway import StripeObject

log = logging.getLogger(__name__)

MAX_SIGNATURE_HEADER = 4096
MAX_ATTEMPTS = 8
EVENT_ID = re.compile(r"^evt_[A-Za-z0-9_]{1,250}$")


class InvalidEvent(Exception):  # noqa: N818 - reads as a reason
    pass


def webhook_secrets() -> list[str]:
    return [s.strip() for s in (settings.STRIPE_WEBHOOK_SECRET or "").split(",") if s.strip()]


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def verify(payload: bytes, header: str | None) -> StripeObject:
    """Return the event if the signature is valid under any configured secret, else raise.

    stripe-python rejects only old timestamps; a timestamp from the future is rejected here too.
    """
    secrets = webhook_secrets()
    if not secrets:
        raise InvalidEvent("no webhook secret is configured; refusing every event")
    if not header or len(header) > MAX_SIGNATURE_HEADER:
        raise InvalidEvent("missing or oversized Stripe-Signature header")
    stamps = [p.split("=", 1)[1] for p in header.split(",") if p.startswith("t=")]
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise InvalidEvent("Stripe-Signature header has no single timestamp")
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE
    if abs(time.time() - int(stamps[0])) > tolerance:
        raise InvalidEvent("signature timestamp outside the tolerance window")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
            break
        except (stripe.SignatureVerificationError, UnicodeDecodeError, ValueError):
            continue
    else:
        raise InvalidEvent("no valid v1 signature for this payload")
    try:
        event = json.loads(payload, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidEvent("payload is not JSON") from exc
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise InvalidEvent("payload is not a Stripe event")
    if (
        not EVENT_ID.match(event["id"])
        or "\x00" in payload.decode("utf-8", "replace")
        or ("\\u0000" in payload.decode("utf-8", "replace"))
    ):
        raise InvalidEvent("event id or payload contains characters Stripe never sends")
    if bool(event.get("livemode")) != gateway.expected_livemode():
        raise InvalidEvent(
            f"event livemode={event.get('livemode')} does not match the configured key"
        )
    return event


# --- handlers ------------------------------------------------------------------------------


def _session(
    event: StripeObject, row: StripeEvent, source: str, hint: str | None = None
) -> Order | None:
    session = event["data"]["object"]
    if session.get("mode") == "subscription":
        memberships.apply_session(session, source=source, event_id=row.event_id)
        return None
    return fulfilment.fulfil_checkout_session(
        session, source=source, event_id=row.event_id, hint=hint
    )


def _subscription(event: StripeObject, row: StripeEvent, source: str) -> None:
    memberships.apply_subscription(event["data"]["object"], source=source, event_id=row.event_id)


def _invoice(event: StripeObject, row: StripeEvent, source: str) -> None:
    memberships.apply_invoice(event["data"]["object"], source=source, event_id=row.event_id)


def _refund(event: StripeObject, row: StripeEvent, source: str) -> Order:
    return fulfilment.apply_charge_refund(
        event["data"]["object"], source=source, event_id=row.event_id
    )


def _dispute(event: StripeObject, row: StripeEvent, source: str, closed: bool) -> Order:
    return fulfilment.apply_dispute(
        event["data"]["object"], closed=closed, source=source, event_id=row.event_id
    )


# Each handler takes (event, its ledger row, source) and returns the order it settled, if any.
HANDLERS: dict[str, Callable[[StripeObject, StripeEvent, str], Order | None]] = {
    "checkout.session.completed": _session,
    "checkout.session.async_payment_succeeded": _session,
    "checkout.session.async_payment_failed": lambda e, r, s: _session(e, r, s, "async_failed"),
    "checkout.session.expired": _session,
    "charge.refunded": _refund,
    "charge.dispute.created": lambda e, r, s: _dispute(e, r, s, closed=False),
    "charge.dispute.closed": lambda e, r, s: _dispute(e, r, s, closed=True),
    "customer.subscription.created": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "invoice.paid": _invoice,
    "invoice.payment_failed": _invoice,
}


def _malformed(event: StripeObject) -> str:
    """Why a signed event's object cannot be one of the types we handle, or ''."""
    obj = event["data"]["object"]
    kind = event["type"].split(".")[0]
    if not isinstance(obj.get("id"), str):
        return "object has no id"
    if kind == "checkout":
        if not isinstance(obj.get("metadata") or {}, dict):
            return "metadata is not an object"
        for key in ("client_reference_id", "status", "payment_status", "currency"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                return f"{key} is not a string"
        for key in ("amount_total", "amount_subtotal"):
            if obj.get(key) is not None and not isinstance(obj[key], int):
                return f"{key} is not an integer"
        if not isinstance(obj.get("total_details") or {}, dict):
            return "total_details is not an object"
    if kind in ("customer", "invoice"):
        if not isinstance(obj.get("metadata") or {}, dict):
            return "metadata is not an object"
        if not isinstance(obj.get("status") or "", str):
            return "status is not a string"
        for key in ("subscription", "customer"):
            value = obj.get(key)
            if value is not None and not isinstance(value, str | dict):
                return f"{key} is not an id"
        if not isinstance(obj.get("parent") or {}, dict):
            return "parent is not an object"
        items = obj.get("items") or {}
        if not isinstance(items, dict) or not isinstance(items.get("data") or [], list):
            return "items is not a list object"
    if kind == "charge":
        if event["type"] == "charge.refunded":
            if not isinstance(obj.get("amount_refunded") or 0, int):
                return "amount_refunded is not an integer"
            refunds = obj.get("refunds") or {}
            if not isinstance(refunds, dict) or not isinstance(refunds.get("data") or [], list):
                return "refunds is not a list object"
            if any(
                not isinstance(r, dict)
                or not isinstance(r.get("id"), str)
                or not isinstance(r.get("amount") or 0, int)
                for r in refunds.get("data") or []
            ):
                return "a refund is malformed"
        elif not isinstance(obj.get("status") or "", str):
            return "status is not a string"
        for key in ("payment_intent", "charge"):
            value = obj.get(key)
            if value is not None and not isinstance(value, str | dict):
                return f"{key} is not an id"
    return ""


def _stripe_created(event: StripeObject) -> datetime | None:
    created = event.get("created")
    if isinstance(created, int):
        return datetime.fromtimestamp(created, tz=UTC)
    return None


def process(
    event: StripeObject, *, force: bool = False, source: str = OrderEvent.Source.WEBHOOK
) -> str:
    """Record and handle one verified event exactly once; returns the ledger status.

    Raises when handling fails (after recording the failure) so the caller answers non-2xx.
    """
    try:
        return _process(event, force=force, source=source)
    except Exception as exc:
        record_failure(event, exc)
        raise


def _process(event: StripeObject, *, force: bool, source: str) -> str:
    event_id = event["id"]
    with transaction.atomic():
        row = StripeEvent(
            event_id=event_id,
            type=event["type"][:100],
            livemode=bool(event.get("livemode")),
            api_version=str(event.get("api_version") or "")[:50],
            payload=event,
            attempts=1,
            stripe_created=_stripe_created(event),
        )
        # The unique event id is the lock: a concurrent copy waits here for this transaction.
        inserted = insert_new([row])
        if inserted:
            row.pk = inserted[0]
        else:
            row = StripeEvent.objects.select_for_update().get(event_id=event_id)
            if row.status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED) and not (
                force
            ):
                log.info("stripe event %s (%s) is a duplicate; nothing to do", event_id, row.type)
                return "duplicate"
            row.attempts += 1

        handler = HANDLERS.get(row.type)
        order = None
        problem = _malformed(event) if handler else ""
        if problem:
            log.warning("stripe event %s (%s) ignored: malformed: %s", event_id, row.type, problem)
            row.status, row.error = StripeEvent.Status.IGNORED, f"malformed: {problem}"
        elif handler is None:
            log.info("stripe event %s: unhandled type %s, ignored", event_id, row.type)
            row.status, row.error = StripeEvent.Status.IGNORED, f"unhandled type {row.type}"
        else:
            try:
                order = handler(event, row, source)
                row.status, row.error = StripeEvent.Status.PROCESSED, ""
            except fulfilment.Ignored as reason:
                log.warning("stripe event %s (%s) ignored: %s", event_id, row.type, reason)
                row.status, row.error = StripeEvent.Status.IGNORED, str(reason)
        row.order = order
        row.processed_at = timezone.now()
        row.next_attempt_at = None
        update_row(row, ["status", "error", "order", "processed_at", "next_attempt_at", "attempts"])
        return row.status


def backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 24 * 60))


def record_failure(event: StripeObject, exc: Exception) -> None:
    """Remember a failed attempt in its own transaction, after the work rolled back."""
    message = f"{exc.__class__.__name__}: {exc}"[:2000]
    log.error("stripe event %s (%s) failed: %s", event.get("id"), event.get("type"), message)
    try:
        with transaction.atomic():
            row, created = StripeEvent.objects.select_for_update().get_or_create(
                event_id=event["id"],
                defaults={
                    "type": str(event.get("type"))[:100],
                    "livemode": bool(event.get("livemode")),
                    "api_version": str(event.get("api_version") or "")[:50],
                    "payload": event,
                    "status": StripeEvent.Status.FAILED,
                    "error": message,
                    "attempts": 1,
                    "stripe_created": _stripe_created(event),
                    "next_attempt_at": timezone.now() + backoff(1),
                },
            )
            if created or row.status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED):
                return
            row.attempts += 1
            row.error = message
            row.status = (
                StripeEvent.Status.DEAD
                if row.attempts >= MAX_ATTEMPTS
                else StripeEvent.Status.FAILED
            )
            row.next_attempt_at = timezone.now() + backoff(row.attempts)
            row.save()
    except Exception:  # the original error matters more; it is re-raised
        log.exception("could not record the failure of stripe event %s", event.get("id"))
