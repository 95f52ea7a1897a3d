"""What operators do by hand: grant and revoke access, with a reason, in the audit log."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from wagtail.log_actions import log as audit_log

from commerce.mail import notifications
from commerce.models import Entitlement, normalise_email

if TYPE_CHECKING:
    from base.models import User
    from courses.models import CoursePage

log = logging.getLogger(__name__)


class AccessError(Exception):
    pass


def _owner_filter(user: User | None, email: str | None) -> Q:
    if user is not None:
        return Q(user=user)
    return Q(user__isnull=True, email=normalise_email(email))


def grant_access(
    *,
    course: CoursePage,
    reason: str,
    user: User | None = None,
    email: str | None = None,
    actor: User | None = None,
    expires_at: datetime | None = None,
    via: str = "admin",
) -> tuple[Entitlement, bool]:
    """An operator's grant: audited with who, when and why."""
    if not (reason or "").strip():
        raise AccessError("A reason is required.")
    if user is None and not email:
        raise AccessError("Name a user or an e-mail address.")
    with transaction.atomic():
        existing = (
            Entitlement.objects.select_for_update()
            .filter(_owner_filter(user, email), course=course, status=Entitlement.Status.ACTIVE)
            .first()
        )
        if existing:
            return existing, False
        entitlement = Entitlement.objects.create(
            course=course,
            user=user,
            email=normalise_email(email or (user.email if user is not None else "")),
            source=Entitlement.Source.ADMIN,
            reason=reason.strip(),
            granted_by=actor,
            expires_at=expires_at,
        )
        audit_log(
            instance=entitlement,
            action="commerce.grant",
            user=actor,
            data={"reason": reason.strip(), "via": via, "course": course.pk},
        )
    log.info(
        "access granted to %s for course %s via %s", entitlement.user_id or "guest", course.pk, via
    )
    return entitlement, True


def revoke_access(
    *,
    course: CoursePage,
    reason: str,
    user: User | None = None,
    email: str | None = None,
    actor: User | None = None,
    via: str = "admin",
) -> list[Entitlement]:
    if not (reason or "").strip():
        raise AccessError("A reason is required.")
    if user is None and not email:
        raise AccessError("Name a user or an e-mail address.")
    revoked = []
    with transaction.atomic():
        for entitlement in Entitlement.objects.select_for_update().filter(
            _owner_filter(user, email),
            course=course,
            status__in=[Entitlement.Status.ACTIVE, Entitlement.Status.SUSPENDED],
        ):
            entitlement.status = Entitlement.Status.REVOKED
            entitlement.reason = reason.strip()
            entitlement.revoked_at = timezone.now()
            entitlement.save(update_fields=["status", "reason", "revoked_at", "updated_at"])
            audit_log(
                instance=entitlement,
                action="commerce.revoke",
                user=actor,
                data={"reason": reason.strip(), "via": via, "course": course.pk},
            )
            revoked.append(entitlement)
            notifications.record(
                "revoked",
                key=f"entitlement:{entitlement.pk}:revoked",
                email=entitlement.user.email if entitlement.user is not None else entitlement.email,
                entitlement=entitlement,
                why="admin",
            )
    log.info(
        "access revoked (%s entitlement(s)) for course %s via %s", len(revoked), course.pk, via
    )
    return revoked
