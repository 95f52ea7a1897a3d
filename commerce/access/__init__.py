"""The one access check every gate calls (lesson pages, documents, downloads)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from commerce.models import Entitlement

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from base.models import User
    from courses.models import CoursePage, LessonPage


def has_course_access(user: User | AnonymousUser | None, course: CoursePage) -> bool:
    """Free course, staff, or an active unexpired entitlement — one indexed query at most."""
    if course.price_amount == 0:
        return True
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return Entitlement.objects.filter(user_id=user.pk, course_id=course.pk).active().exists()


def can_view_lesson(
    user: User | AnonymousUser | None, lesson: LessonPage, course: CoursePage
) -> bool:
    return lesson.is_free_preview or has_course_access(user, course)


def opened_for(user: User | AnonymousUser | None, courses: list[CoursePage]) -> list[CoursePage]:
    """The courses of a list that ``user`` may open now, by the rule above, in one query."""
    if user is None or not user.is_authenticated:
        return [course for course in courses if course.price_amount == 0]
    if user.is_staff or user.is_superuser:
        return list(courses)
    entitled = set(
        Entitlement.objects.filter(user_id=user.pk, course_id__in=[c.pk for c in courses])
        .active()
        .values_list("course_id", flat=True)
    )
    return [c for c in courses if c.price_amount == 0 or c.pk in entitled]
