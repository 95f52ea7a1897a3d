"""The learner's library in a constant number of queries, however many courses they own."""

from types import SimpleNamespace

from django.db.models import Q
from django.utils import timezone

from commerce.models import Entitlement, Membership, Order, PlanCourse
from courses.models import CoursePage, LessonPage
from learner.models import Certificate, CourseCompletion, LessonProgress
from learner.progress import settle_course


def build(user):
    now = timezone.now()
    entitlements = list(
        Entitlement.objects.filter(user=user)
        .active(now)
        .select_related("course", "course__cover_image")
        .order_by("-granted_at")
    )
    memberships = list(
        Membership.objects.filter(user=user)
        .exclude(status__in=[Membership.Status.CHECKOUT, Membership.Status.ABANDONED])
        .select_related("plan")
        .order_by("-created_at")
    )
    owned = {e.course_id for e in entitlements}
    opening = [m for m in memberships if m.opens_now(now)]
    member_courses = []
    if opening:
        plans = {m.plan_id: m.plan for m in opening}
        member_courses = CoursePage.objects.live().select_related("cover_image").order_by("title")
        if not any(plan.all_courses for plan in plans.values()):
            member_courses = member_courses.filter(
                pk__in=PlanCourse.objects.filter(plan_id__in=plans).values("course_id")
            )
        member_courses = [c for c in member_courses if c.pk not in owned]
    # A course opened by a membership is listed like a bought one, without an entitlement.
    entitlements += [
        SimpleNamespace(course=c, expires_at=None, via="membership") for c in member_courses
    ]
    courses = [e.course for e in entitlements if e.course.live]
    lessons_by_course = {}
    if courses:
        condition = Q()
        for course in courses:
            condition |= Q(path__startswith=course.path)
        for lesson in (
            LessonPage.objects.live()
            .filter(condition)
            .filter(depth__gt=3)
            .only("id", "title", "path", "url_path")
            .order_by("path")
        ):
            for course in courses:
                if lesson.path.startswith(course.path):
                    lessons_by_course.setdefault(course.pk, []).append(lesson)
    progress = {}
    last_seen = {}
    watched = {}
    for row in LessonProgress.objects.filter(user=user).order_by("last_seen_at"):
        progress[row.lesson_id] = row.status
        last_seen[row.course_id] = row.lesson_id
        watched[row.lesson_id] = row.watched_percent
    completed = set(CourseCompletion.objects.filter(user=user).values_list("course_id", flat=True))
    # Every lesson done but the course not recorded complete: the lessons left were
    # unpublished after the learner finished the rest. Settled now (rare, idempotent).
    for course in courses:
        lessons = lessons_by_course.get(course.pk, [])
        finished = lessons and all(progress.get(lesson.pk) == "completed" for lesson in lessons)
        if finished and course.pk not in completed and settle_course(user, course):
            completed.add(course.pk)
    certificates = {c.course_id: c for c in Certificate.objects.filter(user=user)}
    items = []
    for entitlement in entitlements:
        course = entitlement.course
        if not course.live:
            continue
        lessons = lessons_by_course.get(course.pk, [])
        done = sum(1 for lesson in lessons if progress.get(lesson.pk) == "completed")
        resume = next((lesson for lesson in lessons if lesson.pk == last_seen.get(course.pk)), None)
        upcoming = next(
            (lesson for lesson in lessons if progress.get(lesson.pk) != "completed"), None
        )
        items.append(
            {
                "course": course,
                "entitlement": entitlement,
                "total": len(lessons),
                "done": done,
                "percent": round(100 * done / len(lessons)) if lessons else 0,
                "resume": resume or upcoming or (lessons[0] if lessons else None),
                "resume_watched": watched.get((resume or upcoming or lessons[0]).pk, 0)
                if lessons
                else 0,
                "completed": course.pk in completed,
                "certificate": certificates.get(course.pk),
            }
        )
    orders = list(
        Order.objects.filter(user=user)
        .select_related("gift")
        .prefetch_related("items")
        .order_by("-created_at")[:50]
    )
    gift_orders = [o.pk for o in orders if getattr(o, "gift", None) is not None]
    claimed = set(
        Entitlement.objects.filter(order_item__order__in=gift_orders, user__isnull=False)
        .values_list("order_item__order_id", flat=True)
        .distinct()
        if gift_orders
        else []
    )
    for order in orders:
        order.gift_claimed = order.pk in claimed
    return {"library": items, "orders": orders, "memberships": memberships}
