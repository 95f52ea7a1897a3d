"""Starting a purchase: snapshot the price in a pending order, then open a Checkout Session."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from base.money import format_money
from commerce.models import Entitlement, Order, OrderEvent, OrderItem, normalise_email
from commerce.payments import gateway

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from base.models import User
    from courses.models import CoursePage

log = logging.getLogger(__name__)

# Stripe accepts a Checkout Session lifetime between 30 minutes and 24 hours.
MIN_TTL, MAX_TTL = 30, 24 * 60


def order_ttl() -> timedelta:
    return timedelta(minutes=min(max(settings.ORDER_TTL_MINUTES, MIN_TTL), MAX_TTL))


def reusable_order(
    course: CoursePage,
    *,
    user: User | AnonymousUser | None,
    email: str,
    session_orders: Iterable[str] = (),
) -> Order | None:
    """A buyer who clicks Buy twice gets the same open session, not a second order.

    Only the same owner may reuse an order: the same account, or, for a guest, the same
    browser session and address. An e-mail address alone never opens someone else's order.
    """
    orders = Order.objects.filter(
        status=Order.Status.PENDING,
        items__course=course,
        expires_at__gt=timezone.now() + timedelta(minutes=5),
    ).exclude(stripe_session_url="")
    if user is not None and user.is_authenticated:
        orders = orders.filter(user=user)
    else:
        orders = orders.filter(
            user__isnull=True, email=email, public_id__in=list(session_orders)[-20:]
        )
    return orders.first()


def start_checkout(
    course: CoursePage,
    *,
    user: User | AnonymousUser | None,
    email: str,
    session_orders: Iterable[str] = (),
) -> Order:
    """Return a pending order with a Checkout Session URL. Raises GatewayError.

    Stripe's return URLs are built from SITE_URL, never from the request's Host header.
    """
    email = normalise_email(email)
    existing = reusable_order(course, user=user, email=email, session_orders=session_orders)
    if existing:
        return existing
    with transaction.atomic():
        order = Order.objects.create(
            user=user if user and user.is_authenticated else None,
            email=email,
            currency=course.price_currency,
            amount_subtotal=course.price_amount,
            expires_at=timezone.now() + order_ttl(),
        )
        OrderItem.objects.create(
            order=order,
            course=course,
            title=course.title[:255],
            unit_amount=course.price_amount,
            currency=course.price_currency,
        )
        OrderEvent.objects.create(
            order=order,
            source=OrderEvent.Source.CHECKOUT,
            to_status=order.status,
            message=f"order created for {course.title} at "
            f"{format_money(course.price_amount, course.price_currency)}",
        )
    params = {
        "mode": "payment",
        "client_reference_id": order.public_id,
        "metadata": {"order_id": order.public_id},
        "payment_intent_data": {"metadata": {"order_id": order.public_id}},
        "customer_email": email,
        "allow_promotion_codes": True,
        "expires_at": int(order.expires_at.timestamp()),
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": course.price_currency,
                    "unit_amount": course.price_amount,
                    "product_data": {
                        "name": course.title[:250],
                        "metadata": {"course_id": str(course.pk)},
                    },
                },
            }
        ],
        "success_url": settings.SITE_URL
        + reverse("checkout_success")
        + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": f"{settings.SITE_URL}{reverse('checkout_cancel')}?order={order.public_id}",
    }
    try:
        session = gateway.create_checkout_session(
            params, idempotency_key=f"checkout-session-{order.public_id}"
        )
    except gateway.GatewayError as exc:
        OrderEvent.objects.create(
            order=order,
            source=OrderEvent.Source.CHECKOUT,
            message=f"could not open a Stripe session: {exc}",
        )
        raise
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        order.stripe_session_id = session["id"]
        order.stripe_session_url = session.get("url") or ""
        order.save(update_fields=["stripe_session_id", "stripe_session_url", "updated_at"])
    log.info("order %s: checkout session %s opened", order.public_id, session["id"])
    return order


def enrol_free(course: CoursePage, user: User) -> Entitlement:
    """Free courses need no Stripe: an enrolment entitlement for the learner's library."""
    existing = Entitlement.objects.filter(
        user=user, course=course, status=Entitlement.Status.ACTIVE
    ).first()
    if existing:
        return existing
    with transaction.atomic():
        entitlement, _ = Entitlement.objects.get_or_create(
            user=user,
            course=course,
            status=Entitlement.Status.ACTIVE,
            defaults={"email": normalise_email(user.email), "source": Entitlement.Source.ENROLMENT},
        )
    return entitlement
