"""The one place where Stripe's facts become order states and entitlements.

Every path — webhook, success page, reconciliation, admin — calls these functions. Each locks
the order row, records the new *facts* (paid, failed, expired, refunds, disputes), derives the
status from all facts together and brings entitlements in line. Facts only accumulate, so the
same call twice changes nothing and the final state does not depend on arrival order.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Subquery, Value
from django.db.models.functions import Upper
from django.db.models.lookups import Exact
from django.utils import timezone

from base.db import Prepared, insert_new, insert_row
from base.money import format_money
from commerce.mail import notifications, receipts
from commerce.models import (
    Dispute,
    Entitlement,
    Gift,
    Order,
    OrderEvent,
    OrderItem,
    Refund,
    RefundRequest,
)
from commerce.payments import gateway
from commerce.payments.gateway import StripeObject

if TYPE_CHECKING:
    from base.models import User

log = logging.getLogger(__name__)

PAID_STATUSES = {"paid", "no_payment_required"}


class Ignored(Exception):  # noqa: N818 - an outcome, not an error
    """The event is valid but not ours to act on (missing or foreign metadata, unknown order)."""


def _id(value: Any) -> str:
    """Stripe fields may be an id or an expanded object."""
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


# --- facts ---------------------------------------------------------------------------------


def _record_session(order: Order, session: StripeObject, hint: str | None = None) -> list[str]:
    """Record what a Checkout Session says; returns descriptions of new facts."""
    changes: list[str] = []
    if order.stripe_session_id and order.stripe_session_id != session.get("id"):
        raise Ignored(
            f"session {session.get('id')} does not belong to order {order.public_id} "
            f"(its session is {order.stripe_session_id})"
        )
    if not order.stripe_session_id:
        order.stripe_session_id = session["id"]
    payment_intent = _id(session.get("payment_intent"))
    if payment_intent and not order.stripe_payment_intent_id:
        order.stripe_payment_intent_id = payment_intent

    now = timezone.now()
    status = session.get("status")
    payment_status = session.get("payment_status")
    if order.paid_at:
        return changes
    if hint == "async_failed":
        if not order.failed_at:
            order.failed_at = now
            changes.append("asynchronous payment failed")
    elif status == "complete" and payment_status in PAID_STATUSES:
        problem = _amount_problem(order, session)
        if problem:
            if order.review_reason != problem:
                order.review_reason = problem
                changes.append(f"payment flagged for review: {problem}")
                log.error("order %s flagged: %s", order.public_id, problem)
        else:
            order.paid_at = now
            order._newly_paid = True  # the receipt goes out once this commits
            order.amount_total = session.get("amount_total") or 0
            order.amount_discount = (session.get("total_details") or {}).get("amount_discount") or 0
            note = "payment succeeded"
            if order.amount_discount:
                note += f" with a discount of {format_money(order.amount_discount, order.currency)}"
            changes.append(note)
    elif status == "complete" and payment_status == "unpaid":
        if not order.processing_at and not order.failed_at:
            order.processing_at = now
            changes.append("payment processing (asynchronous method)")
    elif status == "expired" and not order.expired_at:
        order.expired_at = now
        changes.append("checkout session expired")
    return changes


def _amount_problem(order: Order, session: StripeObject) -> str:
    """What the session charged must be the snapshot, less a discount Stripe explains."""
    currency = (session.get("currency") or "").lower()
    if currency != order.currency:
        return f"currency {currency or '?'} does not match order currency {order.currency}"
    subtotal = session.get("amount_subtotal")
    total = session.get("amount_total")
    details = session.get("total_details") or {}
    discount = details.get("amount_discount") or 0
    extras = (details.get("amount_tax") or 0) + (details.get("amount_shipping") or 0)
    if subtotal != order.amount_subtotal:
        return (
            f"subtotal {subtotal} does not match the snapshot {order.amount_subtotal} "
            f"(minor units, {order.currency})"
        )
    if total is None or total != subtotal - discount + extras:
        return f"total {total} is not subtotal {subtotal} less discount {discount}"
    return ""


def _record_refund(order: Order, charge: StripeObject) -> list[str]:
    changes: list[str] = []
    if charge.get("id") and not order.stripe_charge_id:
        order.stripe_charge_id = charge["id"]
    for refund in (charge.get("refunds") or {}).get("data") or []:
        _, created = Refund.objects.get_or_create(
            stripe_refund_id=refund["id"],
            defaults={
                "order": order,
                "amount": refund.get("amount") or 0,
                "currency": (refund.get("currency") or order.currency).lower(),
                "status": refund.get("status") or "",
            },
        )
        key = (refund.get("metadata") or {}).get("refund_request")
        if key:  # asked for from the admin; the request now knows its Stripe refund
            RefundRequest.objects.filter(idempotency_key=key, stripe_refund_id="").update(
                stripe_refund_id=refund["id"], status=RefundRequest.Status.SENT
            )
        if created:
            amount = format_money(refund.get("amount") or 0, order.currency)
            changes.append(f"refund {refund['id']} of {amount} recorded")
    counted = sum(r.amount for r in order.refunds.all() if r.status in ("succeeded", "pending", ""))
    refunded = max(order.amount_refunded, charge.get("amount_refunded") or 0, counted)
    refunded = min(refunded, order.amount_subtotal)
    if refunded != order.amount_refunded:
        order._refunded_now = refunded - order.amount_refunded  # what the buyer is told
        order.amount_refunded = refunded
        changes.append(f"refunded total is now {format_money(refunded, order.currency)}")
    return changes


def _record_dispute(order: Order, dispute: StripeObject, closed: bool) -> list[str]:
    status = dispute.get("status")
    if closed:
        outcome = Dispute.Status.LOST if status == "lost" else Dispute.Status.WON
    else:
        outcome = Dispute.Status.OPEN
    row, created = Dispute.objects.get_or_create(
        stripe_dispute_id=dispute["id"],
        defaults={
            "order": order,
            "status": outcome,
            "amount": dispute.get("amount") or 0,
            "reason": dispute.get("reason") or "",
        },
    )
    if created:
        return [f"dispute {row.stripe_dispute_id} {outcome}"]
    # A closed dispute never reopens, whichever event arrives last.
    if row.status == Dispute.Status.OPEN and outcome != Dispute.Status.OPEN:
        row.status = outcome
        row.save(update_fields=["status", "updated_at"])
        return [f"dispute {row.stripe_dispute_id} {outcome}"]
    return []


# --- derived state -------------------------------------------------------------------------


def derive_status(order: Order, dispute_statuses: Collection[str]) -> Order.Status:
    if order.paid_at:
        if Dispute.Status.LOST in dispute_statuses or Dispute.Status.OPEN in dispute_statuses:
            return Order.Status.DISPUTED
        if order.amount_refunded and order.amount_refunded >= (order.amount_total or 0):
            return Order.Status.REFUNDED
        if order.amount_refunded:
            return Order.Status.PARTIALLY_REFUNDED
        return Order.Status.PAID
    if order.review_reason:
        return Order.Status.NEEDS_REVIEW
    if order.failed_at:
        return Order.Status.FAILED
    if order.processing_at:
        return Order.Status.PROCESSING
    if order.expired_at:
        return Order.Status.EXPIRED
    return Order.Status.PENDING


# Revocation reasons that mean the money went back to the buyer in full (learner.certificates
# voids a certificate for them).
DISPUTE_LOST = "dispute lost"
REFUNDED_IN_FULL = "refunded in full"


def access_due(
    order: Order, dispute_statuses: Collection[str]
) -> tuple[Entitlement.Status | None, str]:
    """(entitlement status, reason) the order's items should have; None before payment."""
    if not order.paid_at:
        return None, ""
    if Dispute.Status.LOST in dispute_statuses:
        return Entitlement.Status.REVOKED, DISPUTE_LOST
    if Dispute.Status.OPEN in dispute_statuses:
        return Entitlement.Status.SUSPENDED, "payment disputed"
    if order.amount_refunded and order.amount_refunded >= (order.amount_total or 0):
        return Entitlement.Status.REVOKED, REFUNDED_IN_FULL
    if order.amount_refunded and settings.PARTIAL_REFUND_REVOKES:
        return Entitlement.Status.REVOKED, "partially refunded"
    return Entitlement.Status.ACTIVE, ""


def owner_of(order: Order) -> tuple[int | None, str]:
    """(user id, address) the order's courses belong to: the buyer, or a gift's recipient
    (by address only, until they claim it; never the buyer)."""
    if hasattr(order, "gift_email"):  # read with the order (see _lock_order)
        recipient = order.gift_email
    else:
        gift = Gift.objects.filter(order_id=order.pk).only("recipient_email").first()
        recipient = gift.recipient_email if gift is not None else None
    if recipient is not None:
        return None, recipient
    return order.user_id, order.email


def _grant(order: Order, items: list[OrderItem], owner: tuple[int | None, str]) -> set[int]:
    """Grant the items' courses in one statement; returns the ids of the items granted. An item
    whose owner already has the course gets no second grant: a guest address that is an
    account's owning it (read with the items), or the partial unique index (one active grant
    per owner), which refuses the row without an error or a savepoint."""
    user_id, email = owner
    wanted = [
        item
        for item in items
        if user_id is not None or not getattr(item, "owned_by_account", False)
    ]
    return set(
        insert_new(
            [
                Entitlement(
                    course_id=item.course_id,
                    user_id=user_id,
                    email=email,
                    source=Entitlement.Source.PURCHASE,
                    order_item_id=item.pk,  # by id: the item's own entitlement stays unknown
                )
                for item in wanted
            ],
            returning="order_item",
        )
    )


def _sync_entitlements(
    order: Order, wanted: Entitlement.Status, reason: str
) -> tuple[list[str], int]:
    """Bring each item's entitlement in line; returns (notes, items the buyer already had).
    Statuses given to existing entitlements are left in ``order._access_changes``."""
    notes, owned = [], 0
    order._access_changes = set()
    now = timezone.now()
    may_grant = wanted == Entitlement.Status.ACTIVE and not order.already_owned_at
    owner = owner_of(order) if may_grant else (None, "")
    items = _items(order, owner[1] if may_grant and owner[0] is None else "")
    to_grant = []
    if may_grant:
        to_grant = [item for item in items if getattr(item, "entitlement", None) is None]
    granted = _grant(order, to_grant, owner) if to_grant else set()
    for item in items:
        entitlement = getattr(item, "entitlement", None)
        if entitlement is None:
            if item not in to_grant:
                continue
            if item.pk in granted:
                notes.append(f"access granted to {item.title}")
            else:
                notes.append(f"buyer already had access to {item.title}; no second grant")
                owned += 1
        elif entitlement.status != wanted and entitlement.status != Entitlement.Status.REVOKED:
            # Revocation is final; suspension can be lifted.
            entitlement.status = wanted
            entitlement.reason = reason or "restored"
            if wanted == Entitlement.Status.REVOKED:
                entitlement.revoked_at = now
            entitlement.save(update_fields=["status", "reason", "revoked_at", "updated_at"])
            order._access_changes.add(wanted)
            notes.append(f"access to {item.title} {wanted}" + (f" ({reason})" if reason else ""))
    return notes, (owned if items and owned == len(items) else 0)


def _settle(
    order: Order,
    changes: list[str],
    *,
    source: str,
    event_id: str = "",
    actor: User | None = None,
) -> Order:
    """Derive status and access from all facts, save, and append to the audit trail."""
    if not changes:
        return order
    disputes = {status for (status,) in DISPUTES.rows(order_id=order.pk)}
    old_status = order.status
    order.status = derive_status(order, disputes)
    wanted, reason = access_due(order, disputes)
    notes, already_owned = _sync_entitlements(order, wanted, reason) if wanted else ([], 0)
    if already_owned and getattr(order, "_newly_paid", False) and not order.already_owned_at:
        order.already_owned_at = timezone.now()
        notes.append("the payment will be refunded in full automatically")
    order.save_changes()
    insert_row(
        OrderEvent(
            order=order,
            source=source,
            stripe_event_id=event_id,
            actor=actor,
            from_status=old_status,
            to_status=order.status,
            message="; ".join(changes + notes),
        )
    )
    log.info(
        "order %s %s -> %s via %s %s: %s",
        order.public_id,
        old_status,
        order.status,
        source,
        event_id,
        "; ".join(changes + notes),
    )
    _tell_buyer(order, old_status, reason)
    if getattr(order, "_newly_paid", False):
        transaction.on_commit(lambda: receipts.after_payment(order))
    return order


def _tell_buyer(order: Order, old_status: str, reason: str) -> None:
    """Record the e-mails this change owes the buyer (each once; see notifications)."""
    kinds: list[tuple[str, str, dict[str, Any]]] = []
    if order.status != old_status and order.status in (
        Order.Status.PROCESSING,
        Order.Status.FAILED,
    ):
        kinds.append((order.status, order.status, {}))
    refunded_now = getattr(order, "_refunded_now", 0)
    if refunded_now > 0 and order.paid_at and not order.already_owned_at:
        full = order.amount_refunded >= (order.amount_total or 0)
        data = {"refunded_now": refunded_now, "full": full}
        kinds.append(("refunded", f"refunded:{order.amount_refunded}", data))
    changes: set[str] = getattr(order, "_access_changes", set())
    if Entitlement.Status.SUSPENDED in changes:
        kinds.append(("suspended", "suspended", {}))
    if Entitlement.Status.ACTIVE in changes:
        kinds.append(("restored", "restored", {}))
    if Entitlement.Status.REVOKED in changes and reason == DISPUTE_LOST:
        kinds.append(("revoked", "revoked", {"why": "dispute"}))
    for kind, suffix, data in kinds:
        notifications.record(
            kind, key=f"{order.public_id}:{suffix}", email=order.email, order=order, **data
        )


# --- entry points --------------------------------------------------------------------------


def _order_ref(session: StripeObject) -> str:
    metadata = session.get("metadata") or {}
    ref = session.get("client_reference_id") or metadata.get("order_id")
    if not ref:
        raise Ignored(f"checkout session {session.get('id')} has no order metadata")
    if metadata.get("order_id") and metadata["order_id"] != ref:
        raise Ignored(f"checkout session {session.get('id')} has conflicting order references")
    return ref


# A first delivery's three reads, compiled once per process (base.db.Prepared): building
# them cost more CPU than the rest of the delivery.
ORDER_FIELDS = [f.attname for f in Order._meta.concrete_fields]
ITEM_FIELDS = [f.attname for f in OrderItem._meta.concrete_fields]
ENTITLEMENT_FIELDS = [f.attname for f in Entitlement._meta.concrete_fields]

LOCK_ORDER = Prepared(
    lambda public_id: (
        Order.objects.select_for_update()
        .filter(public_id=public_id)
        .annotate(
            recipient=Subquery(
                Gift.objects.filter(order=OuterRef("pk")).values("recipient_email")[:1]
            )
        )
        .order_by()
        .values_list(*ORDER_FIELDS, "recipient")
    ),
    public_id="ord_prepared_stand_in",
)
DISPUTES = Prepared(
    lambda order_id: Dispute.objects.filter(order_id=order_id).order_by().values_list("status"),
    order_id=-7_000_003,
)
ITEMS = Prepared(
    # Whether an account with the guest's address already has the course: the address is
    # compared as iexact does on PostgreSQL (its index is on UPPER(email)).
    lambda order_id, email, now: (
        OrderItem.objects.filter(order_id=order_id)
        .annotate(
            account_has_it=Exists(
                Entitlement.objects.filter(course_id=OuterRef("course_id"))
                .filter(Exact(Upper("user__email"), Upper(Value(email))))
                .active(now)
            )
        )
        .order_by()
        .values_list(
            *ITEM_FIELDS, *(f"entitlement__{f}" for f in ENTITLEMENT_FIELDS), "account_has_it"
        )
    ),
    order_id=-7_000_004,
    email="guest-prepared-stand-in@example.invalid",
    now=datetime(1901, 2, 3, 4, 5, 6, 790, tzinfo=UTC),
)


def _lock_order(public_id: str) -> Order | None:
    """Lock the order and read a gift's recipient with it (it never changes). Disputes are
    read after the lock, by _settle: a subquery here would see the snapshot from before the
    wait, missing a dispute the lock holder just recorded."""
    rows = LOCK_ORDER.rows(public_id=public_id)
    if not rows:
        return None
    *fields, gift_email = rows[0]
    order = Order.from_db(connection.alias, ORDER_FIELDS, fields)
    order.gift_email = gift_email
    return order


def _items(order: Order, guest_email: str) -> list[OrderItem]:
    """The order's items, each with its entitlement (if any) and, for a guest's address,
    ``owned_by_account``."""
    items = []
    n, m = len(ITEM_FIELDS), len(ENTITLEMENT_FIELDS)
    for row in ITEMS.rows(order_id=order.pk, email=guest_email, now=timezone.now()):
        item = OrderItem.from_db(connection.alias, ITEM_FIELDS, row[:n])
        entitlement = None
        if row[n] is not None:  # the entitlement's id
            entitlement = Entitlement.from_db(connection.alias, ENTITLEMENT_FIELDS, row[n : n + m])
        # as select_related("entitlement") leaves it: known, even when there is none
        OrderItem.entitlement.related.set_cached_value(item, entitlement)
        item.owned_by_account = bool(guest_email) and row[n + m]
        items.append(item)
    return items


def fulfil_checkout_session(
    session: StripeObject,
    *,
    source: str,
    event_id: str = "",
    hint: str | None = None,
    actor: User | None = None,
) -> Order:
    """Bring the session's order up to date. Safe to call any number of times, concurrently."""
    ref = _order_ref(session)
    # Inside the webhook ledger's transaction this adds no savepoint (two round trips): an
    # error rolls back the whole delivery anyway. "Ignored" leaves the block normally, so the
    # ledger can still record why.
    with transaction.atomic(savepoint=False):
        order = _lock_order(public_id=ref)
        try:
            if order is None:
                raise Ignored(f"checkout session {session.get('id')} names unknown order {ref}")
            changes = _record_session(order, session, hint)
        except Ignored as reason:
            ignored = reason
        else:
            return _settle(order, changes, source=source, event_id=event_id, actor=actor)
    raise ignored


def _locked_order_for_payment(payment_intent_id: str, charge_id: str) -> tuple[Order, list[str]]:
    """Find and lock the order a charge or dispute belongs to, asking Stripe if need be."""
    order = None
    if payment_intent_id:
        order = (
            Order.objects.select_for_update()
            .filter(stripe_payment_intent_id=payment_intent_id)
            .first()
        )
    if order is None and charge_id:
        order = Order.objects.select_for_update().filter(stripe_charge_id=charge_id).first()
    if order is not None:
        return order, []
    if not payment_intent_id:
        raise Ignored(f"charge {charge_id} has no payment intent and matches no order")
    # The completion event has not arrived yet: learn the order from the session itself.
    session = gateway.session_for_payment_intent(payment_intent_id)
    if session is None:
        raise Ignored(f"payment intent {payment_intent_id} was not made by a checkout session")
    ref = _order_ref(session)
    order = Order.objects.select_for_update().filter(public_id=ref).first()
    if order is None:
        raise Ignored(f"payment intent {payment_intent_id} names unknown order {ref}")
    return order, _record_session(order, session)


def apply_charge_refund(
    charge: StripeObject, *, source: str, event_id: str = "", actor: User | None = None
) -> Order:
    with transaction.atomic():
        order, changes = _locked_order_for_payment(_id(charge.get("payment_intent")), charge["id"])
        changes += _record_refund(order, charge)
        return _settle(order, changes, source=source, event_id=event_id, actor=actor)


def apply_dispute(
    dispute: StripeObject,
    *,
    closed: bool,
    source: str,
    event_id: str = "",
    actor: User | None = None,
) -> Order:
    with transaction.atomic():
        order, changes = _locked_order_for_payment(
            _id(dispute.get("payment_intent")), _id(dispute.get("charge"))
        )
        changes += _record_dispute(order, dispute, closed)
        return _settle(order, changes, source=source, event_id=event_id, actor=actor)
