"""Gifts: the recipient is told on the delivery date, once, and claims with the usual link.

The entitlements exist from payment (granted to the recipient's address by fulfilment) but
cannot be claimed before delivery (``EntitlementQuerySet.claimable``). Delivery marks the gift
under its row lock and records a keyed notification, so the scheduled job and the task queued
after payment can both run without telling anyone twice."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from commerce.mail import notifications
from commerce.models import Gift, Notification, Order, OrderEvent

log = logging.getLogger(__name__)

# A refunded or disputed gift is not delivered; an already-owned one is refunded instead.
DELIVERABLE = [Order.Status.PAID, Order.Status.PARTIALLY_REFUNDED]


def due(today=None):
    return Gift.objects.filter(
        delivered_at__isnull=True,
        deliver_on__lte=today or timezone.localdate(),
        order__paid_at__isnull=False,
        order__already_owned_at__isnull=True,
        order__status__in=DELIVERABLE,
    )


def enqueue_delivery(order_id):
    async_task("commerce.tasks.deliver_gift", order_id, task_name=f"gift-{order_id}")


def after_payment(order):
    """A gift for today goes out now rather than at the next scheduled run."""
    if due().filter(order_id=order.pk).exists():
        enqueue_delivery(order.pk)


def deliver(order_id):
    """Tell the recipient, once, if the gift is due. Returns what happened."""
    with transaction.atomic():
        gift = (
            Gift.objects.select_for_update(of=("self",))
            .select_related("order")
            .filter(order_id=order_id)
            .first()
        )
        if gift is None or gift.delivered_at:
            return "skipped"
        if not due().filter(pk=gift.pk).exists():
            return "not due"
        gift.delivered_at = timezone.now()
        gift.save(update_fields=["delivered_at"])
        order = gift.order
        notifications.record(
            Notification.Kind.GIFT,
            key=f"gift:{order.public_id}",
            email=gift.recipient_email,
            order=order,
        )
        OrderEvent.objects.create(
            order=order,
            source=OrderEvent.Source.SYSTEM,
            from_status=order.status,
            to_status=order.status,
            message=f"gift delivered: {gift.recipient_email} e-mailed a claim link",
        )
    log.info("order %s: gift delivered to its recipient", order.public_id)
    return "delivered"


def deliver_due(limit=500):
    """The scheduled job: every gift whose day has come and that has not gone out."""
    ids = list(due().order_by("deliver_on", "pk").values_list("order_id", flat=True)[:limit])
    delivered = sum(deliver(order_id) == "delivered" for order_id in ids)
    return {"due": len(ids), "delivered": delivered}


class CannotResend(Exception):  # noqa: N818 - a reason shown to the buyer
    pass


RESEND_EVERY_SECONDS = 3600


def resend(gift, now=None):
    """The buyer asks for the recipient's e-mail again: at most once an hour, only once the
    gift was delivered, while it is unclaimed and still paid for."""
    if not gift.delivered_at:
        raise CannotResend(f"The gift goes out on {gift.deliver_on:%d %B %Y}.")
    if gift.claimed:
        raise CannotResend("The recipient has already claimed the gift.")
    if gift.order.status not in DELIVERABLE:
        raise CannotResend("This gift was refunded.")
    now = now or timezone.now()
    window = int(now.timestamp()) // RESEND_EVERY_SECONDS
    sent = notifications.record(
        Notification.Kind.GIFT,
        key=f"gift:{gift.order.public_id}:again:{window}",
        email=gift.recipient_email,
        order=gift.order,
    )
    if sent is None:
        next_at = datetime.fromtimestamp(
            (window + 1) * RESEND_EVERY_SECONDS, tz=timezone.get_current_timezone()
        )
        raise CannotResend(f"It was sent again recently; you can ask again after {next_at:%H:%M}.")
    OrderEvent.objects.create(
        order=gift.order,
        source=OrderEvent.Source.SYSTEM,
        from_status=gift.order.status,
        to_status=gift.order.status,
        message=f"gift e-mail sent again to {gift.recipient_email} at the buyer's request",
    )
    return sent
