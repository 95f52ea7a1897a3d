"""django-q2 tasks. Each is idempotent: running it twice has the effect of running it once."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from commerce import emails
from commerce.models import Order

log = logging.getLogger(__name__)


def enqueue_receipt(order_id):
    async_task("commerce.tasks.send_receipt", order_id, task_name=f"receipt-{order_id}")


def send_receipt(order_id):
    """Send the receipt once: the order row lock makes concurrent runs wait and then skip."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.receipt_sent_at or not order.paid_at or order.already_owned_at:
            return "skipped"
        items = list(order.items.select_related("course"))
        context = {
            "order": order,
            "items": items,
            "site_url": settings.SITE_URL,
            "is_guest": order.user_id is None,
        }
        if items:
            context["course_url"] = settings.SITE_URL + items[0].course.url
        if order.user_id is None:
            from commerce.claims import make_claim_url

            context["claim_url"] = make_claim_url(order.email)
        emails.send(
            to=order.email,
            subject=f"Your receipt for order {order.public_id}",
            template="commerce/email/receipt",
            context=context,
        )
        order.receipt_sent_at = timezone.now()
        order.save(update_fields=["receipt_sent_at", "updated_at"])
    log.info("receipt sent for order %s", order.public_id)
    return "sent"


def enqueue_already_owned_refund(order_id):
    async_task(
        "commerce.tasks.refund_already_owned",
        order_id,
        task_name=f"already-owned-refund-{order_id}",
    )


def refund_already_owned(order_id):
    """Refund a payment for courses the buyer already had, and tell them, once.

    Stripe's idempotency key (from the order) makes a retried or concurrent run refund once;
    the order row lock makes the e-mail and the trail entry happen once. The order's state
    changes only when Stripe's charge.refunded arrives, like every other refund.
    """
    from commerce import gateway
    from commerce.models import OrderEvent

    order = Order.objects.get(pk=order_id)
    if not order.already_owned_at or order.auto_refund_requested_at or not order.paid_at:
        return "skipped"
    if order.amount_refunded >= (order.amount_total or 0):
        return "skipped: already refunded"
    refund = gateway.create_refund(
        {
            "payment_intent": order.stripe_payment_intent_id,
            "reason": "duplicate",
            "metadata": {"order_id": order.public_id, "why": "buyer already had access"},
        },
        idempotency_key=f"already-owned-refund-{order.public_id}",
    )
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.auto_refund_requested_at:
            return "skipped"
        items = list(order.items.select_related("course"))
        context = {
            "order": order,
            "items": items,
            "refund_amount": refund.get("amount") or order.amount_total,
            "site_name": settings.SITE_NAME,
            "site_url": settings.SITE_URL,
            "course_url": settings.SITE_URL + items[0].course.url if items else settings.SITE_URL,
        }
        if order.user_id is None:
            from commerce.claims import make_claim_url

            context["claim_url"] = make_claim_url(order.email)
        emails.send(
            to=order.email,
            subject="You already had this course: payment refunded",
            template="commerce/email/already_owned",
            context=context,
        )
        order.auto_refund_requested_at = timezone.now()
        order.save(update_fields=["auto_refund_requested_at", "updated_at"])
        OrderEvent.objects.create(
            order=order,
            source=OrderEvent.Source.SYSTEM,
            from_status=order.status,
            to_status=order.status,
            message=f"automatic full refund {refund.get('id')} requested: the buyer already had "
            "access; buyer e-mailed. The order changes when Stripe confirms the refund.",
        )
    log.info("order %s: already-owned refund %s requested", order.public_id, refund.get("id"))
    return "refunded"


# Scheduled jobs (see setup_schedules). Thin: the work lives in commerce.operations.


def expire_pending_orders_job():
    from commerce.operations import expire_pending_orders

    return expire_pending_orders()


def reconcile_job():
    from commerce.operations import reconcile

    return reconcile(triggered_by="schedule").summary


def retry_failed_events_job():
    from commerce.operations import retry_failed_events

    return retry_failed_events()


def send_missing_receipts_job():
    from commerce.operations import send_missing_receipts

    return send_missing_receipts()
