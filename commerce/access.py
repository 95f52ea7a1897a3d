"""The one access check every gate calls (lesson pages, documents, downloads)."""

from django.db.models import Q
from django.utils import timezone

from commerce.models import Entitlement, normalise_email


def active(qs):
    """Entitlements that open a course now: active and not expired."""
    return qs.filter(status=Entitlement.Status.ACTIVE).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )


def has_course_access(user, course):
    """Free course, staff, or an active unexpired entitlement — one indexed query at most."""
    if course.price_amount == 0:
        return True
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return active(Entitlement.objects.filter(user_id=user.pk, course_id=course.pk)).exists()


def email_has_course_access(email, course):
    """Whether a guest e-mail already owns the course (to stop a second purchase)."""
    email = normalise_email(email)
    return active(
        Entitlement.objects.filter(course_id=course.pk).filter(
            Q(email=email) | Q(user__email__iexact=email)
        )
    ).exists()


def can_view_lesson(user, lesson, course):
    return lesson.is_free_preview or has_course_access(user, course)


def entitled_course_ids(user):
    if user is None or not user.is_authenticated:
        return set()
    return set(
        active(Entitlement.objects.filter(user_id=user.pk)).values_list("course_id", flat=True)
    )
