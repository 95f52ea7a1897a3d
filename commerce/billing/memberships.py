"""Memberships on Stripe Billing: Checkout in subscription mode, then Stripe's facts.

Every event about a subscription (its own events, its invoices, the checkout that made it) is
answered the same way: lock the membership, fetch the subscription as Stripe holds it *now*,
store its facts and derive status and access from them. So an event arriving late, twice or
out of order cannot move a membership backwards, and reconciliation is the same call made
without an event. Access is ``access_until``: derived here, compared by the access check.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from base import caching
from base.money import format_money
from commerce.mail import notifications
from commerce.models import Invoice as InvoiceRow
from commerce.models import Membership, MembershipEvent, MembershipPlan, Notification, PlanPrice
from commerce.payments import gateway
from commerce.payments.fulfilment import Ignored
from commerce.payments.gateway import StripeObject

if TYPE_CHECKING:
    from base.models import User
    from courses.models import CoursePage

log = logging.getLogger(__name__)

# A renewal's webhook may come late (or be lost until reconciliation): an active membership
# stays open this long past its period end before Stripe's next word is needed.
RENEWAL_LEEWAY = timedelta(hours=36)


class NotForSale(Exception):  # noqa: N818 - a reason shown to the learner
    pass


class AlreadyMember(Exception):  # noqa: N818 - an outcome
    def __init__(self, membership):
        super().__init__("already a member")
        self.membership = membership


def _when(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if isinstance(value, int) and value else None


def _id(value: Any) -> str:
    if isinstance(value, dict):
        return value.get("id") or ""
    return value or ""


def period_end(subscription: StripeObject) -> datetime | None:
    """Since API 2025-03-31 the period lives on the subscription's items."""
    items = ((subscription.get("items") or {}).get("data")) or []
    ends = [i.get("current_period_end") for i in items if isinstance(i, dict)]
    ends = [e for e in ends if isinstance(e, int)]
    return _when(max(ends)) if ends else _when(subscription.get("current_period_end"))


def live_membership(user: User, plan: MembershipPlan) -> Membership | None:
    return (
        Membership.objects.filter(user=user, plan=plan, status__in=Membership.LIVE)
        .order_by("-created_at")
        .first()
    )


# --- checkout ------------------------------------------------------------------------------


def plans_including(course: CoursePage) -> tuple[str, ...]:
    """Names of the active plans that open ``course``, as its page lists them: cached until a
    plan or the content changes (commerce.signals moves the content generation on)."""

    def build() -> tuple[str, ...]:
        plans = MembershipPlan.objects.filter(active=True).filter(
            Q(all_courses=True) | Q(plan_courses__course_id=course.pk)
        )
        return tuple(plans.distinct().order_by("name").values_list("name", flat=True))

    return caching.cached("plans-including", course.pk, build=build)


def stripe_price(price: PlanPrice) -> str:
    """The Stripe Price for this amount, currency and interval: made once, then reused."""
    if price.stripe_price_id and price.stripe_price_for == price.signature:
        return price.stripe_price_id
    made = gateway.create_price(
        {
            "currency": price.currency,
            "unit_amount": price.amount,
            "recurring": {"interval": price.interval},
            "product_data": {
                "name": price.plan.name[:250],
                "metadata": {"plan_id": str(price.plan_id)},
            },
            "metadata": {"plan_id": str(price.plan_id), "plan_price_id": str(price.pk)},
        },
        idempotency_key=f"plan-price-{price.pk}-{price.signature}",
    )
    PlanPrice.objects.filter(pk=price.pk).update(
        stripe_price_id=made["id"], stripe_price_for=price.signature
    )
    return made["id"]


def start_checkout(plan: MembershipPlan, interval: str, user: User) -> Membership:
    """A membership in checkout with a Stripe session URL. Raises NotForSale, AlreadyMember
    (the learner holds this plan: send them to billing) or GatewayError."""
    if not plan.active:
        raise NotForSale(f"{plan.name} is no longer offered.")
    price = plan.price_for(interval)
    if price is None:
        raise NotForSale(f"{plan.name} has no {interval}ly price.")
    existing = live_membership(user, plan)
    if existing is not None:
        raise AlreadyMember(existing)
    open_one = Membership.objects.filter(
        user=user, plan=plan, status=Membership.Status.CHECKOUT
    ).first()
    if open_one and open_one.stripe_session_url and open_one.interval == interval:
        return open_one
    if open_one:  # another interval, or a session that never opened: close it, start again
        _close_checkout(open_one)
    with transaction.atomic():
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    user=user,
                    plan=plan,
                    interval=interval,
                    amount=price.amount,
                    currency=price.currency,
                )
        except IntegrityError:  # a second click at the same instant: use its checkout
            return Membership.objects.get(user=user, plan=plan, status=Membership.Status.CHECKOUT)
        _trail(membership, "checkout", "", f"checkout opened for {price}")
    subscription_data: dict[str, Any] = {"metadata": {"membership_id": membership.public_id}}
    if price.trial_days:
        subscription_data["trial_period_days"] = price.trial_days
    params = {
        "mode": "subscription",
        "client_reference_id": membership.public_id,
        "metadata": {"membership_id": membership.public_id},
        "subscription_data": subscription_data,
        "line_items": [{"price": stripe_price(price), "quantity": 1}],
        "success_url": settings.SITE_URL + reverse("my_courses") + "?membership=started",
        "cancel_url": settings.SITE_URL + reverse("membership_plans"),
    }
    customer = (
        Membership.objects.filter(user=user)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    if customer:
        params["customer"] = customer
    else:
        params["customer_email"] = user.email
    session = gateway.create_checkout_session(
        params, idempotency_key=f"membership-checkout-{membership.public_id}"
    )
    Membership.objects.filter(pk=membership.pk).update(
        stripe_session_id=session["id"], stripe_session_url=session.get("url") or ""
    )
    membership.refresh_from_db()
    log.info("membership %s: checkout session %s opened", membership.public_id, session["id"])
    return membership


def _close_checkout(membership: Membership) -> None:
    """Expire an open checkout at Stripe before starting another, so two can never both be
    paid; one that was paid meanwhile is applied instead (and the learner sent to billing)."""
    if membership.stripe_session_id:
        try:
            gateway.expire_checkout_session(
                membership.stripe_session_id,
                idempotency_key=f"membership-expire-{membership.public_id}",
            )
        except gateway.GatewayError:
            session = gateway.retrieve_checkout_session(membership.stripe_session_id)
            if session.get("status") != "complete":
                raise
            applied = apply_session(session, source="checkout")
            raise AlreadyMember(applied) from None
    Membership.objects.filter(pk=membership.pk, status=Membership.Status.CHECKOUT).update(
        status=Membership.Status.ABANDONED
    )


# --- Stripe's facts ------------------------------------------------------------------------


def derive_access(membership: Membership, now: datetime | None = None) -> datetime | None:
    """Until when the membership opens its plan's courses, from Stripe's facts alone."""
    status = membership.status
    if status in (Membership.Status.ACTIVE, Membership.Status.TRIALING):
        end = membership.current_period_end or membership.trial_end
        if end is None:
            return None
        return end if membership.cancel_at_period_end else end + RENEWAL_LEEWAY
    if status == Membership.Status.PAST_DUE and membership.past_due_since:
        return membership.past_due_since + timedelta(days=settings.MEMBERSHIP_GRACE_DAYS)
    return None


def _record(membership: Membership, subscription: StripeObject) -> list[str]:
    """Store what Stripe says the subscription is now; return what changed."""
    changes = []
    status = subscription.get("status") or ""
    if status not in Membership.Status.values or status in ("checkout", "abandoned"):
        raise Ignored(f"subscription {subscription.get('id')} has unknown status {status!r}")
    final = (Membership.Status.CANCELED, Membership.Status.INCOMPLETE_EXPIRED)
    if membership.status in final and status not in final:
        raise Ignored(f"membership {membership.public_id} has ended; a subscription never restarts")
    now = timezone.now()
    if membership.stripe_subscription_id is None:
        membership.stripe_subscription_id = subscription["id"]
    customer = _id(subscription.get("customer"))
    if customer and not membership.stripe_customer_id:
        membership.stripe_customer_id = customer
    if status != membership.status:
        changes.append(f"status {membership.status} → {status}")
        if status == Membership.Status.PAST_DUE:
            membership.past_due_since = membership.past_due_since or now
        else:
            membership.past_due_since = None
        if status in Membership.ENDED:
            membership.ended_at = _when(subscription.get("ended_at")) or now
        membership.status = status
    end = period_end(subscription)
    if end and end != membership.current_period_end:
        changes.append(f"paid until {end:%Y-%m-%d %H:%M}")
        membership.current_period_end = end
    cancelling = bool(subscription.get("cancel_at_period_end"))
    if cancelling != membership.cancel_at_period_end:
        changes.append("cancels at the end of the period" if cancelling else "cancellation undone")
        membership.cancel_at_period_end = cancelling
    items = ((subscription.get("items") or {}).get("data")) or []
    price = (items[0].get("price") or {}) if items and isinstance(items[0], dict) else {}
    interval = (price.get("recurring") or {}).get("interval")
    amount = price.get("unit_amount")
    if (
        interval in ("month", "year")
        and isinstance(amount, int)
        and ((interval, amount) != (membership.interval, membership.amount))
    ):  # switched in the billing portal
        changes.append(f"now {format_money(amount, membership.currency)} per {interval}")
        membership.interval, membership.amount = interval, amount
    trial_end = _when(subscription.get("trial_end"))
    if trial_end != membership.trial_end:
        membership.trial_end = trial_end
    return changes


def _settle(
    membership: Membership, changes: list[str], old_status: str, *, source: str, event_id: str
) -> Membership:
    was_open = membership.access_until
    membership.access_until = derive_access(membership)
    if membership.access_until and membership.started_at is None:
        membership.started_at = timezone.now()  # drip release counts from here
    if not changes and was_open == membership.access_until:
        return membership
    membership.save()
    _trail(membership, source, event_id, "; ".join(changes) or "access recalculated", old_status)
    _tell(membership, old_status, changes)
    log.info(
        "membership %s %s -> %s via %s %s: %s",
        membership.public_id,
        old_status,
        membership.status,
        source,
        event_id,
        "; ".join(changes),
    )
    return membership


def _trail(membership, source, event_id, message, old_status=None):
    MembershipEvent.objects.create(
        membership=membership,
        source=source,
        stripe_event_id=event_id,
        from_status=old_status if old_status is not None else "",
        to_status=membership.status,
        message=message,
    )


def _tell(membership: Membership, old_status: str, changes: list[str]) -> None:
    """The e-mails a change owes the learner, each once (keyed notifications)."""
    email = membership.user.email
    key = membership.public_id
    if membership.status in (Membership.Status.ACTIVE, Membership.Status.TRIALING):
        notifications.record(
            Notification.Kind.WELCOME, key=f"{key}:welcome", email=email, membership=membership
        )
    if membership.cancel_at_period_end and membership.current_period_end:
        notifications.record(
            Notification.Kind.CANCELLING,
            key=f"{key}:cancelling:{membership.current_period_end:%Y%m%d}",
            email=email,
            membership=membership,
        )
    if (
        membership.status in Membership.ENDED
        and old_status not in Membership.ENDED
        and old_status != Membership.Status.CHECKOUT
    ):
        notifications.record(
            Notification.Kind.MEMBERSHIP_ENDED,
            key=f"{key}:ended",
            email=email,
            membership=membership,
        )


def _locked(ref: str = "", subscription_id: str = "") -> Membership:
    query = Q()
    if ref:
        query |= Q(public_id=ref)
    if subscription_id:
        query |= Q(stripe_subscription_id=subscription_id)
    membership = Membership.objects.select_for_update().filter(query).first() if query else None
    if membership is None:
        raise Ignored(f"no membership for {ref or subscription_id or 'this event'}")
    return membership


def sync(
    *, ref: str = "", subscription_id: str = "", source: str, event_id: str = ""
) -> Membership:
    """Bring the membership in line with the subscription as Stripe holds it now."""
    with transaction.atomic():
        membership = _locked(ref, subscription_id)
        subscription_id = subscription_id or membership.stripe_subscription_id or ""
        if not subscription_id:
            raise Ignored(f"membership {membership.public_id} has no subscription yet")
        subscription = gateway.retrieve_subscription(subscription_id)
        old_status = membership.status
        changes = _record(membership, subscription)
        return _settle(membership, changes, old_status, source=source, event_id=event_id)


# --- event entry points --------------------------------------------------------------------


def apply_session(session: StripeObject, *, source: str, event_id: str = "") -> Membership:
    """A Checkout Session in subscription mode: completed links the subscription, expired
    closes the checkout."""
    ref = session.get("client_reference_id") or (session.get("metadata") or {}).get("membership_id")
    if not ref:
        raise Ignored(f"subscription checkout {session.get('id')} names no membership")
    if session.get("status") == "expired":
        with transaction.atomic():
            membership = _locked(ref)
            if membership.status == Membership.Status.CHECKOUT:
                membership.status = Membership.Status.ABANDONED
                membership.save(update_fields=["status", "updated_at"])
                _trail(membership, source, event_id, "checkout expired", "checkout")
            return membership
    subscription_id = _id(session.get("subscription"))
    if session.get("status") != "complete" or not subscription_id:
        raise Ignored(f"subscription checkout {session.get('id')} is not complete")
    with transaction.atomic():
        membership = _locked(ref)
        if membership.stripe_session_id and membership.stripe_session_id != session.get("id"):
            raise Ignored(f"session {session.get('id')} is not {membership.public_id}'s")
        if membership.stripe_subscription_id not in (None, subscription_id):
            raise Ignored(f"{membership.public_id} already has another subscription")
        membership.stripe_subscription_id = subscription_id
        customer = _id(session.get("customer"))
        if customer:
            membership.stripe_customer_id = customer
        membership.save(
            update_fields=["stripe_subscription_id", "stripe_customer_id", "updated_at"]
        )
    return sync(ref=ref, source=source, event_id=event_id)


def apply_subscription(
    subscription: StripeObject, *, source: str, event_id: str = ""
) -> Membership:
    ref = (subscription.get("metadata") or {}).get("membership_id") or ""
    return sync(ref=ref, subscription_id=subscription["id"], source=source, event_id=event_id)


def invoice_subscription(invoice: StripeObject) -> str:
    """Where an invoice names its subscription (moved under ``parent`` in API 2025-03-31)."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id(details.get("subscription")) or _id(invoice.get("subscription"))


def apply_invoice(invoice: StripeObject, *, source: str, event_id: str = "") -> Membership:
    subscription_id = invoice_subscription(invoice)
    if not subscription_id:
        raise Ignored(f"invoice {invoice.get('id')} is not for a subscription")
    failed = invoice.get("status") == "open" and bool(invoice.get("attempted"))
    with transaction.atomic():
        membership = _locked(subscription_id=subscription_id)
        lines = (invoice.get("lines") or {}).get("data") or []
        ends = [((line.get("period") or {}).get("end")) for line in lines if isinstance(line, dict)]
        row, created = InvoiceRow.objects.get_or_create(
            stripe_invoice_id=invoice["id"],
            defaults={
                "membership": membership,
                "status": invoice.get("status") or "",
                "amount_due": invoice.get("amount_due") or 0,
                "amount_paid": invoice.get("amount_paid") or 0,
                "currency": (invoice.get("currency") or membership.currency).lower(),
                "period_end": _when(max([e for e in ends if isinstance(e, int)], default=0)),
            },
        )
        if not created and row.status != "paid":  # paid is final
            row.status = invoice.get("status") or row.status
            row.amount_paid = invoice.get("amount_paid") or row.amount_paid
            row.save(update_fields=["status", "amount_paid", "updated_at"])
        if failed:
            notifications.record(
                Notification.Kind.PAYMENT_FAILED,
                key=f"{membership.public_id}:failed:{invoice['id']}",
                email=membership.user.email,
                membership=membership,
                amount=format_money(invoice.get("amount_due") or 0, membership.currency),
            )
        if created:
            what = "paid" if invoice.get("status") == "paid" else "payment failed"
            amount = invoice.get("amount_paid") or invoice.get("amount_due") or 0
            _trail(
                membership,
                source,
                event_id,
                f"invoice {invoice['id']} {what} ({format_money(amount, membership.currency)})",
                membership.status,
            )
    return sync(subscription_id=subscription_id, source=source, event_id=event_id)


# --- reconciliation and billing -------------------------------------------------------------


def reconcile(source: str = "reconciliation") -> dict[str, int]:
    """Every membership that may still change, brought in line with Stripe."""
    checked = fixed = 0
    for membership in Membership.objects.filter(
        Q(status__in=Membership.LIVE) | Q(status=Membership.Status.CHECKOUT)
    ).only("pk", "public_id", "status", "stripe_session_id", "stripe_subscription_id"):
        checked += 1
        before = (membership.status, membership.stripe_subscription_id)
        try:
            if membership.stripe_subscription_id:
                after = sync(ref=membership.public_id, source=source)
            elif membership.stripe_session_id:
                session = gateway.retrieve_checkout_session(membership.stripe_session_id)
                after = apply_session(session, source=source)
            else:
                continue
        except Ignored as reason:
            log.info("reconciliation skipped membership %s: %s", membership.public_id, reason)
            continue
        if (after.status, after.stripe_subscription_id) != before:
            fixed += 1
    return {"memberships_checked": checked, "memberships_fixed": fixed}


def portal_url(user: User) -> str | None:
    """A Stripe Billing Portal session for the learner's customer, or None without one."""
    customer = (
        Membership.objects.filter(user=user)
        .exclude(stripe_customer_id="")
        .order_by("-created_at")
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    if not customer:
        return None
    session = gateway.create_billing_portal_session(
        {"customer": customer, "return_url": settings.SITE_URL + reverse("my_courses")}
    )
    return session.get("url")


# --- figures for the owner ------------------------------------------------------------------


def monthly(amount: int, interval: str) -> int:
    """A price as its monthly share (a yearly price over 12, to the nearest minor unit)."""
    return amount if interval == "month" else (amount * 2 + 12) // 24


def figures(since: datetime, now: datetime | None = None) -> dict[str, Any]:
    """Recurring revenue and the members who came, went or owe, for the dashboard and report.
    MRR counts memberships that pay (active, or overdue within their grace), not trials."""
    now = now or timezone.now()
    paying = Membership.objects.filter(
        status__in=[Membership.Status.ACTIVE, Membership.Status.PAST_DUE], access_until__gt=now
    ).values_list("amount", "interval", "currency")
    mrr: dict[str, int] = {}
    for amount, interval, currency in paying:
        mrr[currency] = mrr.get(currency, 0) + monthly(amount, interval)
    counts = Membership.objects.aggregate(
        members=Count("pk", filter=Q(access_until__gt=now)),
        new=Count(
            "pk",
            filter=Q(created_at__gte=since)
            & ~Q(status__in=[Membership.Status.CHECKOUT, Membership.Status.ABANDONED]),
        ),
        churned=Count("pk", filter=Q(status=Membership.Status.CANCELED, ended_at__gte=since)),
        past_due=Count("pk", filter=Q(status=Membership.Status.PAST_DUE)),
    )
    return {
        "mrr": [format_money(total, currency) for currency, total in sorted(mrr.items())],
        **counts,
    }
