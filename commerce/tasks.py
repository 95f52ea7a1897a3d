"""django-q2 tasks. Each is idempotent: running it twice has the effect of running it once."""

import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_q.tasks import async_task

from commerce.models import Order

log = logging.getLogger(__name__)


def enqueue_receipt(order_id):
    async_task("commerce.tasks.send_receipt", order_id, task_name=f"receipt-{order_id}")


def send_receipt(order_id):
    """Send the receipt once: the order row lock makes concurrent runs wait and then skip."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.receipt_sent_at or not order.paid_at:
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
        message = EmailMultiAlternatives(
            subject=f"Your receipt for order {order.public_id}",
            body=render_to_string("commerce/email/receipt.txt", context),
            to=[order.email],
        )
        message.attach_alternative(
            render_to_string("commerce/email/receipt.html", context), "text/html"
        )
        message.send()
        order.receipt_sent_at = timezone.now()
        order.save(update_fields=["receipt_sent_at", "updated_at"])
    log.info("receipt sent for order %s", order.public_id)
    return "sent"


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
