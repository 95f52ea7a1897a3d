"""Progress per learner and lesson: opened → in progress; an explicit POST → completed."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from commerce.access import has_course_access
from courses.models import LessonPage
from learner import certificates
from learner.locks import take_turn
from learner.models import CourseCompletion, LessonProgress
from learner.quizzes import required_not_passed

# A learner reading a lesson is "last seen" to this precision: a page view within it writes
# nothing (reading is what the site does most; a write per view would be its biggest cost).
SEEN_EVERY = timedelta(minutes=5)


def record_open(user, lesson, course, seen_at=None):
    """Insert the row or touch ``last_seen_at`` (never demotes a completion); nothing when the
    learner's row, as the page read it (``seen_at``), was touched within SEEN_EVERY."""
    now = timezone.now()
    if seen_at is not None and now - seen_at < SEEN_EVERY:
        return
    updated = LessonProgress.objects.filter(user=user, lesson=lesson).update(last_seen_at=now)
    if not updated:
        LessonProgress.objects.get_or_create(
            user=user, lesson=lesson, defaults={"course": course, "last_seen_at": now}
        )


class QuizNotPassed(Exception):  # noqa: N818 - reads as a reason
    def __init__(self, titles):
        super().__init__(", ".join(titles))
        self.titles = titles


def mark_complete(user, lesson, course):
    """Idempotent; completes the course when every live lesson is complete. A lesson whose
    required quiz the learner has not passed stays as it is (QuizNotPassed)."""
    missing = required_not_passed(user, lesson)
    if missing:
        raise QuizNotPassed(missing)
    now = timezone.now()
    with transaction.atomic():
        take_turn(user)
        progress, _ = LessonProgress.objects.get_or_create(
            user=user, lesson=lesson, defaults={"course": course}
        )
        if progress.status != LessonProgress.Status.COMPLETED:
            progress.status = LessonProgress.Status.COMPLETED
            progress.completed_at = now
            progress.last_seen_at = now
            progress.save()
        settle_course(user, course)
    return progress


def settle_course(user, course):
    """When every live lesson is complete: record the course complete and, while the learner
    may open it (not refunded), issue its certificate. Idempotent; True when complete."""
    with transaction.atomic():
        take_turn(user)
        total = LessonPage.objects.descendant_of(course).live().count()
        done = LessonProgress.objects.filter(
            user=user,
            course=course,
            status=LessonProgress.Status.COMPLETED,
            lesson__live=True,
        ).count()
        if not total or done < total:
            return False
        CourseCompletion.objects.get_or_create(user=user, course=course)
        if has_course_access(user, course):
            certificates.issue(user, course)
        return True


def progress_by_lesson(user, course):
    return {lesson_id: row[0] for lesson_id, row in progress_rows(user, course).items()}


def progress_rows(user, course):
    """{lesson id: (status, last seen, percent of its videos watched, video positions, latest
    quiz attempts)} for one learner and course, in one query."""
    if not user.is_authenticated:
        return {}
    rows = LessonProgress.objects.filter(user=user, course=course).values_list(
        "lesson_id", "status", "last_seen_at", "watched_percent", "videos", "quizzes"
    )
    return {lesson_id: tuple(rest) for lesson_id, *rest in rows}
