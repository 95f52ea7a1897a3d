"""The receipt a buyer gets once payment succeeds, and the sweep that catches lost sends."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from base.queue import enqueue
from commerce.mail import emails, notifications
from commerce.models import Gift, Order

log = logging.getLogger(__name__)


def after_payment(order):
    """Once a payment is committed: the receipt, or (when the buyer already had everything)
    the automatic refund, which tells the buyer itself."""
    from commerce.access import gifts
    from commerce.payments import refunds as refunds_module

    if order.already_owned_at:
        refunds_module.enqueue_already_owned_refund(order.pk)
    else:
        enqueue_receipt(order.pk)
        if getattr(order, "gift_email", "") is not None:  # None: read with the order, no gift
            gifts.after_payment(order)


def enqueue_receipt(order_id):
    enqueue("commerce.tasks.send_receipt", order_id, task_name=f"receipt-{order_id}")


def send_receipt(order_id):
    """Send the receipt once: the order row lock makes concurrent runs wait and then skip."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.receipt_sent_at or not order.paid_at or order.already_owned_at:
            return "skipped"
        items = list(order.items.select_related("course"))
        gift = Gift.objects.filter(order=order).first()
        context = {
            "order": order,
            "items": items,
            "gift": gift,
            "site_url": settings.SITE_URL,
            "is_guest": order.user_id is None,
            "orders_url": settings.SITE_URL + "/my-courses/",
        }
        if items:
            context["course_url"] = settings.SITE_URL + items[0].course.url
        if order.user_id is None and gift is None:
            from commerce.access.claims import make_claim_url

            context["claim_url"] = make_claim_url(order.email)
        emails.send(
            to=order.email,
            subject=f"Your receipt for order {order.public_id}",
            template="commerce/email/receipt",
            context=context,
            key=f"receipt.{order.public_id}",
        )
        order.receipt_sent_at = timezone.now()
        order.save(update_fields=["receipt_sent_at", "updated_at"])
    log.info("receipt sent for order %s", order.public_id)
    return "sent"


def send_missing_receipts(*, older_than_minutes=10):
    """A paid order whose receipt task was lost gets it now (send_receipt is idempotent); so do
    a lost automatic refund and any notification not sent."""
    from commerce.payments import refunds as refunds_module

    cutoff = timezone.now() - timedelta(minutes=older_than_minutes)
    ids = list(
        Order.objects.filter(
            paid_at__isnull=False,
            paid_at__lte=cutoff,
            receipt_sent_at__isnull=True,
            already_owned_at__isnull=True,
            status__in=[Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED],
        ).values_list("pk", flat=True)[:200]
    )
    for pk in ids:
        enqueue_receipt(pk)
    # A payment for a course the buyer already had, whose refund task was lost.
    refunds = list(
        Order.objects.filter(
            already_owned_at__isnull=False,
            already_owned_at__lte=cutoff,
            auto_refund_requested_at__isnull=True,
            paid_at__isnull=False,  # whatever the status: Stripe may have refunded it already
        ).values_list("pk", flat=True)[:200]
    )
    for pk in refunds:
        refunds_module.enqueue_already_owned_refund(pk)
    # Any other e-mail a buyer is owed (payment failed, refunded, access changed).
    owed = list(notifications.unsent(cutoff).values_list("pk", flat=True)[:200])
    for pk in owed:
        notifications.enqueue(pk)
    return {
        "enqueued": len(ids),
        "refunds_enqueued": len(refunds),
        "notifications_enqueued": len(owed),
    }
