"""Drip release: when a lesson opens for a learner who may open its course.

Worked out on each request from the lesson's rule (courses.models.ReleaseRule) and the moment
the learner's access began, so a lesson opens on time without any job running. The scheduled
job below only tells learners that lessons have opened.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Exists, Min, OuterRef, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from commerce.models import Entitlement, Membership, PlanCourse

if TYPE_CHECKING:
    from django.http import HttpRequest

    from courses.models import CoursePage, LessonPage, ReleaseRule

# Where a learner's access began: a claimed guest purchase or gift when it was claimed, a
# membership when it first opened the courses (not when its checkout was opened).
BOUGHT = Coalesce("claimed_at", "granted_at")
JOINED = Coalesce("started_at", "created_at")

# A lesson that opened longer ago than this is not announced (the first run after a
# deploy, a worker that was down for days): the e-mail says "new", not "some time ago".
ANNOUNCE_WITHIN = timedelta(days=3)


def sees_everything(user) -> bool:
    """Staff and editors read unreleased lessons (to write and check them)."""
    return bool(
        user is not None
        and user.is_authenticated
        and (user.is_staff or user.is_superuser or user.has_perm("wagtailadmin.access_admin"))
    )


def access_began(user_id: int, course_id: int, now: datetime | None = None) -> datetime | None:
    """When the learner's current access to the course began: the earliest active purchase
    (claimed, for a guest purchase or a gift) or membership (first opened) that opens it now.
    One query."""
    now = now or timezone.now()
    bought = (
        Entitlement.objects.filter(user_id=user_id, course_id=course_id)
        .active(now)
        .values("user_id")
        .annotate(began=Min(BOUGHT))
        .values("began")
        .order_by()
    )
    member = (
        Membership.objects.filter(user_id=user_id, access_until__gt=now)
        .filter(plan__in=PlanCourse.objects.filter(course_id=course_id).values("plan_id"))
        .values("user_id")
        .annotate(began=Min(JOINED))
        .values("began")
        .order_by()
    )
    all_courses = (
        Membership.objects.filter(user_id=user_id, access_until__gt=now, plan__all_courses=True)
        .values("user_id")
        .annotate(began=Min(JOINED))
        .values("began")
        .order_by()
    )
    starts = [row["began"] for row in bought.union(member, all_courses, all=True) if row["began"]]
    return min(starts) if starts else None


def opens_at(rule: ReleaseRule, began: datetime | None, *, free_course: bool) -> datetime | None:
    """The moment a lesson under ``rule`` opens for a learner whose access began at ``began``.
    Days count only for a paid course (a free one has no purchase to count from)."""
    moments = []
    if rule.on is not None:
        moments.append(
            timezone.make_aware(
                datetime.combine(rule.on, time.min), timezone.get_default_timezone()
            )
        )
    if rule.after_days is not None and not free_course and began is not None:
        moments.append(began + timedelta(days=rule.after_days))
    return max(moments) if moments else None


def not_open_until(
    user, lesson: LessonPage, course: CoursePage, request: HttpRequest | None = None
) -> datetime | None:
    """When this lesson opens if it is not open yet for this user, else None. The caller has
    already decided that the user may open the course (or that the lesson is a free preview)."""
    if lesson.is_free_preview:
        return None
    rule = lesson.release_rule(request)
    if not rule:
        return None
    began = None
    if rule.after_days is not None and not course.is_free and user.is_authenticated:
        began = _began_for_request(request, user, course)
    moment = opens_at(rule, began, free_course=course.is_free)
    if moment is None or moment <= timezone.now() or sees_everything(user):
        return None
    return moment


def _began_for_request(request, user, course):
    if request is None:
        return access_began(user.pk, course.pk)
    memo = request.__dict__.setdefault("_access_began", {})
    if course.pk not in memo:
        memo[course.pk] = access_began(user.pk, course.pk)
    return memo[course.pk]


def outline_opens(request: HttpRequest, course: CoursePage, lessons) -> dict[int, datetime]:
    """{lesson id: when it opens} for the outline's lessons not open yet for this learner (one
    query, only when the course has a rule counted in days)."""
    user = request.user
    ruled = [item for item in lessons if not item.is_free_preview and _rule_of(item)]
    if not ruled:
        return {}
    began = None
    if user.is_authenticated and not course.is_free and any(i.release_after_days for i in ruled):
        began = _began_for_request(request, user, course)
    now = timezone.now()
    closed = {}
    for item in ruled:
        moment = opens_at(_rule_of(item), began, free_course=course.is_free)
        if moment is not None and moment > now:
            closed[item.pk] = moment
    if closed and _may_edit(request):
        return {}
    return closed


def _may_edit(request):
    """Whether the outline shows staff and editors everything: the answer remembered at login
    (base.templatetags.base_tags), as the userbar reads it. Display only: the gate asks the
    database before it serves a lesson that is not open yet."""
    from base.templatetags.base_tags import SESSION_KEY

    user = request.user
    if user.is_authenticated and (user.is_staff or user.is_superuser):
        return True
    session = getattr(request, "session", None)
    if session is not None and SESSION_KEY in session:
        return session[SESSION_KEY]
    return sees_everything(user)


def _rule_of(item):
    from courses.models import ReleaseRule

    return ReleaseRule(item.release_after_days, item.release_on)


def local_date(moment: datetime):
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


def announce_opened(now: datetime | None = None) -> int:
    """Record one e-mail per learner, course and opening moment for lessons that opened in the
    last few days and were still closed when the learner's access began; the notification's
    unique key makes a second run (or two workers at once) record nothing new. Goes to learners
    who bought the course or are members: a free course has no start to count from."""
    from courses.models import CoursePage, LessonPage, ModulePage

    now = now or timezone.now()
    ruled = Q(release_after_days__isnull=False) | Q(release_on__isnull=False)
    below = {"path__startswith": OuterRef("path"), "live": True}
    courses = (
        CoursePage.objects.live()
        .exclude(price_amount=0)
        .filter(
            Exists(LessonPage.objects.filter(ruled, **below))
            | Exists(ModulePage.objects.filter(ruled, **below))
        )
    )
    return sum(_announce_course(course, now) for course in courses)


def _learners(course, now):
    """{user: when their access to the course began} for everyone it is open to by purchase or
    membership (two queries)."""
    began: dict[int, datetime] = {}
    rows = list(
        Entitlement.objects.filter(course=course, user__isnull=False, user__is_active=True)
        .active(now)
        .values_list("user_id")
        .annotate(began=Min(BOUGHT))
    ) + list(
        Membership.objects.filter(access_until__gt=now, user__is_active=True)
        .filter(
            Q(plan__all_courses=True)
            | Q(plan__in=PlanCourse.objects.filter(course=course).values("plan_id"))
        )
        .values_list("user_id")
        .annotate(began=Min(JOINED))
        .order_by()
    )
    for user_id, moment in rows:
        began[user_id] = min(moment, began.get(user_id, moment))
    return began


def _announce_course(course, now):
    from django.contrib.auth import get_user_model

    from commerce.mail import notifications
    from commerce.models import Notification

    lessons = [
        item
        for module in course.curriculum()
        for item in module.lesson_list
        if not item.is_free_preview and _rule_of(item)
    ]
    learners = _learners(course, now)
    emails = dict(get_user_model().objects.filter(pk__in=learners).values_list("pk", "email"))
    recorded = 0
    for user_id, began in learners.items():
        opened: dict[datetime, list] = {}
        for item in lessons:
            moment = opens_at(_rule_of(item), began, free_course=False)
            # Closed when access began, open now, and opened recently.
            if moment is not None and began < moment <= now and moment > now - ANNOUNCE_WITHIN:
                opened.setdefault(moment, []).append(item)
        for moment, items in sorted(opened.items()):
            notification = notifications.record(
                Notification.Kind.LESSONS_OPENED,
                key=f"opened:{user_id}:{course.pk}:{int(moment.timestamp())}",
                email=emails[user_id],
                course_title=course.title,
                lessons=[{"title": i.title, "url": _absolute(i.url)} for i in items],
            )
            recorded += notification is not None
    return recorded


def _absolute(url):
    return url if url.startswith(("http://", "https://")) else settings.SITE_URL + url
