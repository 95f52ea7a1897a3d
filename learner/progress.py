"""Progress per learner and lesson: opened → in progress; an explicit POST → completed."""

from django.db import transaction
from django.utils import timezone

from courses.models import LessonPage
from learner.models import CourseCompletion, LessonProgress


def record_open(user, lesson, course):
    """One statement: insert the row or touch ``last_seen_at`` (never demotes a completion)."""
    now = timezone.now()
    updated = LessonProgress.objects.filter(user=user, lesson=lesson).update(last_seen_at=now)
    if not updated:
        LessonProgress.objects.get_or_create(
            user=user, lesson=lesson, defaults={"course": course, "last_seen_at": now}
        )


def mark_complete(user, lesson, course):
    """Idempotent; completes the course when every live lesson is complete."""
    now = timezone.now()
    with transaction.atomic():
        progress, _ = LessonProgress.objects.get_or_create(
            user=user, lesson=lesson, defaults={"course": course}
        )
        if progress.status != LessonProgress.Status.COMPLETED:
            progress.status = LessonProgress.Status.COMPLETED
            progress.completed_at = now
            progress.last_seen_at = now
            progress.save()
        total = LessonPage.objects.descendant_of(course).live().count()
        done = LessonProgress.objects.filter(
            user=user,
            course=course,
            status=LessonProgress.Status.COMPLETED,
            lesson__live=True,
        ).count()
        if total and done >= total:
            CourseCompletion.objects.get_or_create(user=user, course=course)
    return progress


def progress_by_lesson(user, course):
    if not user.is_authenticated:
        return {}
    return dict(
        LessonProgress.objects.filter(user=user, course=course).values_list("lesson_id", "status")
    )
