"""Starting a purchase: snapshot the prices in a pending order (one item per course, a bundle's
price allocated across its courses), then open a Checkout Session."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Union

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from base.money import allocate, format_money
from commerce.models import Entitlement, Gift, Order, OrderEvent, OrderItem, normalise_email
from commerce.payments import gateway

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from base.models import User
    from courses.models import BundlePage, CoursePage

log = logging.getLogger(__name__)

# Stripe accepts a Checkout Session lifetime between 30 minutes and 24 hours.
MIN_TTL, MAX_TTL = 30, 24 * 60


def order_ttl() -> timedelta:
    return timedelta(minutes=min(max(settings.ORDER_TTL_MINUTES, MIN_TTL), MAX_TTL))


@dataclass(frozen=True)
class GiftDetails:
    """Who a gift is for and when they are told (validated by commerce.forms.GiftForm)."""

    recipient_email: str
    recipient_name: str = ""
    message: str = ""
    deliver_on: date | None = None


class NotForSale(Exception):  # noqa: N818 - a reason shown to the buyer
    pass


Product = Union["CoursePage", "BundlePage"]


def lines(product: Product) -> list[tuple[CoursePage, int]]:
    """(course, amount) per item: a course at its price, or a bundle's live courses with the
    bundle price allocated in proportion to their list prices, summing exactly to it."""
    from courses.models import BundlePage

    if isinstance(product, BundlePage):
        courses = product.courses()
        if not courses:
            raise NotForSale(f"{product.title} has no course on sale at the moment.")
        shares = allocate(product.price_amount, [c.price_amount for c in courses])
        return list(zip(courses, shares, strict=True))
    if product.price_amount <= 0:
        raise NotForSale(f"{product.title} is free.")
    return [(product, product.price_amount)]


def reusable_order(
    product: Product,
    *,
    user: User | AnonymousUser | None,
    email: str,
    session_orders: Iterable[str] = (),
) -> Order | None:
    """A buyer who clicks Buy twice gets the same open session, not a second order.

    Only the same owner may reuse an order: the same account, or, for a guest, the same
    browser session and address. An e-mail address alone never opens someone else's order.
    Gifts are never reused: each names its own recipient.
    """
    from courses.models import BundlePage

    orders = Order.objects.filter(
        status=Order.Status.PENDING,
        gift__isnull=True,
        expires_at__gt=timezone.now() + timedelta(minutes=5),
    ).exclude(stripe_session_url="")
    if isinstance(product, BundlePage):
        orders = orders.filter(bundle=product)
    else:
        orders = orders.filter(bundle__isnull=True, bundle_title="", items__course=product)
    if user is not None and user.is_authenticated:
        orders = orders.filter(user=user)
    else:
        orders = orders.filter(
            user__isnull=True, email=email, public_id__in=list(session_orders)[-20:]
        )
    return orders.first()


def start_checkout(
    product: Product,
    *,
    user: User | AnonymousUser | None,
    email: str,
    session_orders: Iterable[str] = (),
    gift: GiftDetails | None = None,
) -> Order:
    """Return a pending order with a Checkout Session URL. Raises GatewayError, NotForSale.

    The order snapshots one item per course at the amount it sells for now. Stripe's return
    URLs are built from SITE_URL, never from the request's Host header.
    """
    from courses.models import BundlePage

    email = normalise_email(email)
    items = lines(product)
    if gift is None:
        existing = reusable_order(product, user=user, email=email, session_orders=session_orders)
        if existing:
            return existing
    bundle = product if isinstance(product, BundlePage) else None
    currency = product.price_currency
    subtotal = sum(amount for _, amount in items)
    with transaction.atomic():
        order = Order.objects.create(
            user=user if user and user.is_authenticated else None,
            email=email,
            currency=currency,
            amount_subtotal=subtotal,
            bundle=bundle,
            bundle_title=bundle.title[:255] if bundle else "",
            expires_at=timezone.now() + order_ttl(),
        )
        OrderItem.objects.bulk_create(
            [
                OrderItem(
                    order=order,
                    course=course,
                    title=course.title[:255],
                    unit_amount=amount,
                    currency=currency,
                )
                for course, amount in items
            ]
        )
        if gift is not None:
            Gift.objects.create(
                order=order,
                recipient_email=normalise_email(gift.recipient_email),
                recipient_name=gift.recipient_name,
                message=gift.message,
                deliver_on=gift.deliver_on or timezone.localdate(),
            )
        what = f"bundle {bundle.title}" if bundle else product.title
        OrderEvent.objects.create(
            order=order,
            source=OrderEvent.Source.CHECKOUT,
            to_status=order.status,
            message=f"order created for {what} at {format_money(subtotal, currency)}"
            + (f" ({len(items)} courses)" if bundle else "")
            + (f", a gift for {normalise_email(gift.recipient_email)}" if gift else ""),
        )
    prefix = "Gift: " if gift else ""
    suffix = f" ({bundle.title})" if bundle else ""
    params = {
        "mode": "payment",
        "client_reference_id": order.public_id,
        "metadata": {"order_id": order.public_id},
        "payment_intent_data": {"metadata": {"order_id": order.public_id}},
        "customer_email": email,
        "allow_promotion_codes": True,
        "expires_at": int(order.expires_at.timestamp()),
        # One line per course, at its share of a bundle's price; a free course in a bundle
        # is in the order but not on Stripe's bill.
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {
                        "name": f"{prefix}{course.title}{suffix}"[:250],
                        "metadata": {"course_id": str(course.pk)}
                        | ({"bundle_id": str(bundle.pk)} if bundle else {}),
                    },
                },
            }
            for course, amount in items
            if amount > 0
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
