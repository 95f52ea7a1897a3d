"""What a buyer is told when their money or access changes, exactly once.

Fulfilment records a Notification inside the transaction that changes the state (its unique key
makes a replayed or concurrent event record nothing new); after commit the task queue sends it.
A lost task is picked up by the receipts sweep."""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.tasks import async_task

from base.money import format_money
from commerce.mail import emails
from commerce.models import Gift, Notification

log = logging.getLogger(__name__)

SUBJECTS = {
    Notification.Kind.PROCESSING: "Your payment is being processed",
    Notification.Kind.FAILED: "Your payment did not go through",
    Notification.Kind.REFUNDED: "Your refund",
    Notification.Kind.SUSPENDED: "Your course access is on hold",
    Notification.Kind.RESTORED: "Your course access is back",
    Notification.Kind.REVOKED: "Your course access has ended",
    Notification.Kind.ALREADY_OWNED: "You already had this course: payment refunded",
    Notification.Kind.GIFT: "A course for you",
    Notification.Kind.WELCOME: "Welcome: your membership has started",
    Notification.Kind.PAYMENT_FAILED: "Your membership payment did not go through",
    Notification.Kind.CANCELLING: "Your membership is cancelled",
    Notification.Kind.MEMBERSHIP_ENDED: "Your membership has ended",
    Notification.Kind.LESSONS_OPENED: "New lessons are open",
}


def record(kind, *, key, email, order=None, entitlement=None, membership=None, **data):
    """Record that the buyer must be told; sent after commit. Recording twice is a no-op."""
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                key=key,
                kind=kind,
                email=email,
                order=order,
                entitlement=entitlement,
                membership=membership,
                data=data,
            )
    except IntegrityError:
        return None
    transaction.on_commit(lambda: enqueue(notification.pk))
    return notification


def enqueue(notification_id):
    async_task(
        "commerce.tasks.send_notification",
        notification_id,
        task_name=f"notification-{notification_id}",
    )


def _context(notification):
    order = notification.order
    context = {"notification": notification, "email": notification.email, **notification.data}
    if order is not None:
        items = list(order.items.select_related("course"))
        context.update(order=order, items=items, titles=", ".join(i.title for i in items))
        if items:
            context["course_url"] = settings.SITE_URL + items[0].course.url
        context["refunded_now"] = format_money(
            notification.data.get("refunded_now", 0), order.currency
        )
        context["refunded_total"] = format_money(order.amount_refunded, order.currency)
        context["access_kept"] = order.items.filter(entitlement__status="active").exists()
        context["paid"] = format_money(order.amount_total or order.amount_subtotal, order.currency)
        gift = Gift.objects.filter(order=order).first()
        context["gift"] = gift
        if notification.kind == Notification.Kind.GIFT or (
            notification.kind == Notification.Kind.ALREADY_OWNED
            and order.user_id is None
            and gift is None
        ):
            from commerce.access.claims import make_claim_url

            # Fresh when sent (a link expires); for a gift, the recipient's address.
            context["claim_url"] = make_claim_url(notification.email)
    elif notification.entitlement is not None:
        context["titles"] = notification.entitlement.course.title
    if notification.membership_id:
        context["membership"] = notification.membership
        context["billing_url"] = settings.SITE_URL + "/account/billing/"
        context["plans_url"] = settings.SITE_URL + "/membership/"
    context["library_url"] = settings.SITE_URL + "/my-courses/"
    return context


def send(notification_id):
    """Send once: concurrent runs wait on the row lock, then skip."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("order", "entitlement__course", "membership__plan")
            .get(pk=notification_id)
        )
        if notification.sent_at:
            return "skipped"
        emails.send(
            to=notification.email,
            subject=SUBJECTS[notification.kind],
            template=f"commerce/email/{notification.kind}",
            context=_context(notification),
            key=f"notification.{notification.pk}",
        )
        notification.sent_at = timezone.now()
        notification.save(update_fields=["sent_at"])
    log.info("notification %s sent (%s)", notification.pk, notification.kind)
    return "sent"


def unsent(older_than):
    return Notification.objects.filter(sent_at__isnull=True, created_at__lt=older_than)
