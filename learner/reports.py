"""Figures for instructors: each learner's progress in a course, and where learners stop.
Constant queries per page of learners, whatever the course's size."""

from django.contrib.auth import get_user_model
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce

from commerce.models import Entitlement
from courses.models import LessonPage
from learner import quizzes
from learner.models import Certificate, LessonProgress, QuizAttempt

COMPLETED = LessonProgress.Status.COMPLETED


def lessons_of(course):
    """The course's live lessons in page order (their bodies: quiz titles come from them)."""
    return list(LessonPage.objects.descendant_of(course).live().order_by("path"))


def learners_of(course, total):
    """Everyone who holds the course (in any state) or has opened a lesson of it (members,
    free courses), with lessons completed and last activity, most recent first."""
    rows = LessonProgress.objects.filter(user=OuterRef("pk"), course=course)
    done = (
        rows.filter(status=COMPLETED, lesson__live=True)
        .order_by()
        .values("user")
        .annotate(n=Count("pk"))
        .values("n")
    )
    holders = Entitlement.objects.filter(course=course, user__isnull=False).values("user_id")
    readers = LessonProgress.objects.filter(course=course).values("user_id")
    return (
        get_user_model()
        .objects.filter(Q(pk__in=holders) | Q(pk__in=readers))
        .annotate(
            done=Coalesce(Subquery(done, output_field=IntegerField()), Value(0)),
            last_activity=Subquery(rows.order_by("-last_seen_at").values("last_seen_at")[:1]),
            total=Value(total, output_field=IntegerField()),
        )
        .order_by("-last_activity", "email")
    )


def by_status(queryset, status, total):
    if status == "completed":
        return queryset.filter(done__gte=total) if total else queryset.none()
    if status == "in_progress":
        return queryset.filter(last_activity__isnull=False, done__lt=total)
    if status == "not_started":
        return queryset.filter(last_activity__isnull=True)
    return queryset


def describe(course, lessons, users):
    """One row per learner of a page: progress, last activity, best quiz scores, certificate
    and access (three queries for the page)."""
    ids = [u.pk for u in users]
    titles = {quiz.id: quiz.title for lesson in lessons for quiz in quizzes.quizzes_in(lesson)}
    best: dict[int, dict[str, QuizAttempt]] = {}
    for attempt in QuizAttempt.objects.filter(user_id__in=ids, course=course):
        mine = best.setdefault(attempt.user_id, {})
        kept = mine.get(attempt.quiz_id)
        if kept is None or (attempt.score, attempt.submitted_at) > (kept.score, kept.submitted_at):
            mine[attempt.quiz_id] = attempt
    certificates = {
        c.user_id: c for c in Certificate.objects.filter(user_id__in=ids, course=course)
    }
    access = {}
    for user_id, status in Entitlement.objects.filter(user_id__in=ids, course=course).values_list(
        "user_id", "status"
    ):
        if access.get(user_id) != Entitlement.Status.ACTIVE:
            access[user_id] = status
    rows = []
    for user in users:
        certificate = certificates.get(user.pk)
        scores = [
            f"{titles.get(quiz_id, 'Removed quiz')}: {a.score}/{a.total}"
            + (" passed" if a.passed else "")
            for quiz_id, a in sorted(best.get(user.pk, {}).items())
        ]
        rows.append(
            {
                "name": user.get_full_name(),
                "email": user.email,
                "done": user.done,
                "total": user.total,
                "percent": round(100 * min(user.done, user.total) / user.total)
                if user.total
                else 0,
                "last_activity": user.last_activity.replace(microsecond=0)
                if user.last_activity
                else None,
                "quiz_scores": "; ".join(scores),
                "certificate": (
                    f"{certificate.code} (void)" if certificate.is_void else certificate.code
                )
                if certificate
                else "",
                "access": access.get(user.pk, "membership or free"),
            }
        )
    return rows


def where_learners_stop(course, lessons, learners):
    """Per lesson, in order: how many of the learners opened it and completed it (two
    queries); the drop between lessons is where learners stop."""
    people = learners.count()
    progress = LessonProgress.objects.filter(
        course=course, user__in=learners.values("pk"), lesson__in=[lesson.pk for lesson in lessons]
    )
    opened = dict(
        progress.values("lesson_id").annotate(n=Count("pk")).values_list("lesson_id", "n")
    )
    completed = dict(
        progress.filter(status=COMPLETED)
        .values("lesson_id")
        .annotate(n=Count("pk"))
        .values_list("lesson_id", "n")
    )
    return people, [
        {
            "title": lesson.title,
            "opened": opened.get(lesson.pk, 0),
            "completed": completed.get(lesson.pk, 0),
            "percent": round(100 * completed.get(lesson.pk, 0) / people) if people else 0,
        }
        for lesson in lessons
    ]
