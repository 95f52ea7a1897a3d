"""Attaching guest purchases to the account that proves the address they were bought with.

Proof is either a verified address in django-allauth, or a signed, single-use, expiring link
that was e-mailed to the address. Never an address the account merely typed in.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from commerce.models import ClaimToken, Entitlement, Order, OrderEvent, normalise_email

log = logging.getLogger(__name__)
SALT = "commerce.claim-link"


class InvalidClaim(Exception):  # noqa: N818 - reads as a reason
    pass


def guest_purchases_exist(email):
    return (
        Entitlement.objects.filter(user__isnull=True, email=normalise_email(email))
        .claimable()
        .exists()
    )


def make_claim_url(email):
    token = ClaimToken.objects.create(
        email=normalise_email(email),
        expires_at=timezone.now() + timedelta(hours=settings.CLAIM_LINK_HOURS),
    )
    signed = signing.dumps(token.pk, salt=SALT)
    return settings.SITE_URL + reverse("claim", args=[signed])


def read_claim_token(signed):
    """The unused, unexpired token a link names, or InvalidClaim saying why not."""
    try:
        pk = signing.loads(signed, salt=SALT, max_age=settings.CLAIM_LINK_HOURS * 3600)
    except signing.SignatureExpired as exc:
        raise InvalidClaim("This link has expired. Ask for a new one below.") from exc
    except signing.BadSignature as exc:
        raise InvalidClaim("This link is not valid.") from exc
    token = ClaimToken.objects.filter(pk=pk).first()
    if token is None:
        raise InvalidClaim("This link is not valid.")
    if token.used_at:
        raise InvalidClaim("This link has already been used. Log in to see your courses.")
    if token.expires_at <= timezone.now():
        raise InvalidClaim("This link has expired. Ask for a new one below.")
    return token


def used_by(signed):
    """The id of the account that used a genuine link, or None."""
    try:
        pk = signing.loads(signed, salt=SALT)
    except signing.BadSignature:
        return None
    return (
        ClaimToken.objects.filter(pk=pk, used_at__isnull=False)
        .values_list("used_by_id", flat=True)
        .first()
    )


def redeem(signed, user):
    """Use a link once: the address it was sent to is proven for this account."""
    with transaction.atomic():
        token = read_claim_token(signed)
        token = ClaimToken.objects.select_for_update().get(pk=token.pk)
        if token.used_at:
            raise InvalidClaim("This link has already been used.")
        token.used_at = timezone.now()
        token.used_by = user
        token.save(update_fields=["used_at", "used_by"])
    return token.email


def courses_bought_with(user, email):
    """The live courses bought with ``email`` that now belong to this account."""
    from courses.models import CoursePage

    ids = Entitlement.objects.filter(user=user, email=normalise_email(email)).values("course_id")
    return list(CoursePage.objects.live().filter(pk__in=ids).order_by("title"))


def attach_guest_purchases(user, email, *, proof):
    """Give ``user`` every guest entitlement and order bought with ``email``. Idempotent."""
    email = normalise_email(email)
    attached = 0
    with transaction.atomic():
        entitlements = (
            Entitlement.objects.select_for_update(of=("self",))
            .filter(user__isnull=True, email=email)
            .claimable()
        )
        for entitlement in entitlements:
            entitlement.user = user
            entitlement.claimed_at = timezone.now()  # drip release counts from here
            try:
                with transaction.atomic():
                    entitlement.save(update_fields=["user", "claimed_at", "updated_at"])
            except IntegrityError:
                # The account already has this course: keep one active entitlement.
                entitlement.status = Entitlement.Status.REVOKED
                entitlement.reason = "superseded: the account already had access"
                entitlement.revoked_at = timezone.now()
                entitlement.save(
                    update_fields=[
                        "user",
                        "claimed_at",
                        "status",
                        "reason",
                        "revoked_at",
                        "updated_at",
                    ]
                )
            attached += 1
        for order in Order.objects.select_for_update().filter(user__isnull=True, email=email):
            order.user = user
            order.save(update_fields=["user", "updated_at"])
            OrderEvent.objects.create(
                order=order,
                source=OrderEvent.Source.SYSTEM,
                actor=user,
                from_status=order.status,
                to_status=order.status,
                message=f"guest purchase claimed by account {user.pk} ({proof})",
            )
    if attached:
        log.info(
            "user %s claimed %s guest entitlement(s) for %s via %s", user.pk, attached, email, proof
        )
    return attached
