"""Refunds asked for by the shop owner. Stripe is asked once per (order, what the operator saw
when the form was shown, amount); the order and the learner's access change only when Stripe
confirms the refund, through the same fulfilment path as a refund made in Stripe's dashboard."""

import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core import signing
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from base.money import exponent, format_money
from commerce.mail import notifications
from commerce.models import Notification, Order, OrderEvent, RefundRequest
from commerce.payments import gateway

log = logging.getLogger(__name__)

REFUNDABLE = {Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED}


class RefundRefused(Exception):  # noqa: N818 - an answer for the operator, not a crash
    pass


def to_minor(value, currency):
    """Decimal('12.50') usd → 1250; refuses amounts finer than the currency's minor unit."""
    try:
        minor = Decimal(value).scaleb(exponent(currency))
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise RefundRefused("Enter an amount such as 12.50.") from exc
    if minor != minor.to_integral_value():
        raise RefundRefused(f"{currency.upper()} amounts cannot be that precise.")
    return int(minor)


def pending(order):
    """Asked for but not yet confirmed by Stripe, still counted against what may be refunded.

    Stripe's charge.refunded no longer lists the refunds (API 2022-11-15), so requests are not
    matched one by one: whatever the admin asked for beyond the refunded total Stripe reports is
    pending. It can only err low, and Stripe itself refuses a refund above the charge."""
    asked = sum(
        order.refund_requests.exclude(status=RefundRequest.Status.FAILED).values_list(
            "amount", flat=True
        )
    )
    return max(0, asked - order.amount_refunded)


STALE = timedelta(minutes=1)


def retryable(request):
    """Refused by Stripe, or asked so long ago without an answer that the asking process must
    have died: re-sending under the same key cannot refund twice (Stripe keeps keys 24 h)."""
    if request.stripe_refund_id:
        return False
    if request.status == RefundRequest.Status.FAILED:
        return True
    return request.status == RefundRequest.Status.REQUESTED and (
        request.error or request.created_at <= timezone.now() - STALE
    )


def refundable(order):
    if order.status not in REFUNDABLE or not order.stripe_payment_intent_id:
        return 0
    return max(0, (order.amount_total or 0) - order.amount_refunded - pending(order))


def full_amount(order):
    """What "refund what is left" means now, including a request that may be re-sent."""
    stuck = sum(
        request.amount
        for request in order.refund_requests.filter(
            status=RefundRequest.Status.REQUESTED, stripe_refund_id=""
        )
        if retryable(request)
    )
    return refundable(order) + stuck if order.status in REFUNDABLE else 0


BASIS_SALT = "commerce.refund-basis"


def basis(order):
    """What the refund form was shown with: the refunded total and how many refunds Stripe had
    accepted. A form sent twice (a double click, the browser re-posting it after Stripe has
    confirmed, two admins looking at the same order) names the same basis, so the same refund;
    a request Stripe refused or never answered leaves the basis as it was, so asking again from
    a reloaded page re-sends it under its own key."""
    accepted = order.refund_requests.exclude(stripe_refund_id="").count()
    state = f"{order.pk}:{order.amount_refunded}.{accepted}"
    return signing.Signer(salt=BASIS_SALT).sign(state)


def read_basis(order, value):
    try:
        pk, state = signing.Signer(salt=BASIS_SALT).unsign(value or "").split(":", 1)
    except (signing.BadSignature, ValueError) as exc:
        raise RefundRefused("This form is out of date; reload the page and try again.") from exc
    if pk != str(order.pk):
        raise RefundRefused("This form is out of date; reload the page and try again.")
    return state


def request_refund(order_pk, *, amount, reason, actor, basis):
    """Ask Stripe to refund ``amount`` minor units. Returns (request, asked_now): asked_now is
    False when the same refund had already been asked for (a double click, a second admin).
    ``basis`` is the unsigned state the operator saw (see ``basis()``)."""
    reason = (reason or "").strip()
    if not reason:
        raise RefundRefused("Give a reason; it is kept in the order's timeline.")
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_pk)
        key = f"admin-refund-{order.public_id}-{basis}-{amount}"
        existing = RefundRequest.objects.filter(idempotency_key=key).first()
        if existing is not None and not retryable(existing):
            return existing, False
        # A request being retried under its own key is not also a second refund.
        unconfirmed = existing and existing.status == RefundRequest.Status.REQUESTED
        limit = refundable(order) + (existing.amount if unconfirmed else 0)
        if order.status not in REFUNDABLE:
            raise RefundRefused(f"A {order.get_status_display().lower()} order cannot be refunded.")
        if amount <= 0 or amount > limit:
            raise RefundRefused(
                f"Refund between {format_money(1, order.currency)} and "
                f"{format_money(limit, order.currency)}."
            )
        if existing is None:
            request = RefundRequest.objects.create(
                order=order,
                amount=amount,
                currency=order.currency,
                reason=reason,
                requested_by=actor,
                idempotency_key=key,
            )
        else:  # Stripe refused or could not be reached last time: ask again, same key
            request = existing
            request.status, request.error, request.reason = (
                RefundRequest.Status.REQUESTED,
                "",
                reason,
            )
            request.save(update_fields=["status", "error", "reason"])
        OrderEvent.objects.create(
            order=order,
            source=OrderEvent.Source.ADMIN,
            actor=actor,
            from_status=order.status,
            to_status=order.status,
            message=f"refund of {format_money(amount, order.currency)} requested: {reason}",
        )
        payment_intent = order.stripe_payment_intent_id
        public_id = order.public_id
    try:  # outside the row lock: the webhook for this order must not wait on Stripe
        refund = gateway.create_refund(
            {
                "payment_intent": payment_intent,
                "amount": amount,
                "reason": "requested_by_customer",
                "metadata": {"order_id": public_id, "refund_request": key},
            },
            idempotency_key=key,
        )
    except gateway.GatewayError as exc:
        # Refused: it may be asked again. Unreachable or timed out: Stripe may have refunded,
        # so the request stays pending (it still counts) and may be re-sent with its key.
        status = RefundRequest.Status.REQUESTED if exc.retryable else RefundRequest.Status.FAILED
        RefundRequest.objects.filter(pk=request.pk, stripe_refund_id="").update(
            status=status, error=str(exc)
        )
        log.warning("order %s: refund request %s failed: %s", public_id, key, exc)
        raise RefundRefused(str(exc)) from exc
    RefundRequest.objects.filter(pk=request.pk).update(
        status=RefundRequest.Status.SENT, stripe_refund_id=refund["id"]
    )
    request.refresh_from_db()
    log.info("order %s: refund %s of %s requested", public_id, refund["id"], amount)
    return request, True


# --- a payment for courses the buyer already had -------------------------------------------


def enqueue_already_owned_refund(order_id):
    async_task(
        "commerce.tasks.refund_already_owned",
        order_id,
        task_name=f"already-owned-refund-{order_id}",
    )


def refund_already_owned(order_id):
    """Refund a payment for courses the buyer already had, and tell them, once.

    Stripe's idempotency key (from the order) makes a retried or concurrent run refund once;
    the order row lock makes the trail entry happen once, and the e-mail is a notification with
    its own key, sent (and re-sent until it goes) by the task queue. What is already refunded
    is not asked for again, but the buyer is still told. The order's state changes only when
    Stripe's charge.refunded arrives, like every other refund.
    """
    order = Order.objects.get(pk=order_id)
    if not order.already_owned_at or order.auto_refund_requested_at or not order.paid_at:
        return "skipped"
    left = (order.amount_total or 0) - order.amount_refunded
    refund_id = ""
    if left > 0:
        refund = gateway.create_refund(
            {
                "payment_intent": order.stripe_payment_intent_id,
                "reason": "duplicate",
                "metadata": {"order_id": order.public_id, "why": "buyer already had access"},
            },
            idempotency_key=f"already-owned-refund-{order.public_id}",
        )
        refund_id = refund.get("id") or ""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.auto_refund_requested_at:
            return "skipped"
        order.auto_refund_requested_at = timezone.now()
        order.save(update_fields=["auto_refund_requested_at", "updated_at"])
        paid = order.amount_total or 0
        if refund_id:
            what = f"automatic full refund {refund_id} requested: the buyer already had access"
        elif paid:
            what = "automatic refund not needed: the payment was already refunded"
        else:
            what = "nothing to refund: the buyer already had access and paid nothing"
        OrderEvent.objects.create(
            order=order,
            source=OrderEvent.Source.SYSTEM,
            from_status=order.status,
            to_status=order.status,
            message=what + ("; buyer e-mailed." if paid else "."),
        )
        if paid:
            notifications.record(
                Notification.Kind.ALREADY_OWNED,
                key=f"already-owned-{order.pk}",
                email=order.email,
                order=order,
                refund_amount=paid,
            )
    log.info("order %s: already-owned payment handled (%s)", order.public_id, what)
    return "refunded" if refund_id else "nothing to refund"
