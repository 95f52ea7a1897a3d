from dataclasses import asdict

from django import template

from commerce.access import has_access_for_request, release
from learner.progress import progress_rows

register = template.Library()


def rows_for_request(request, course):
    """progress.progress_rows for this learner and course, read once per request (outline,
    actions, video players and the hook that records the visit share it)."""
    memo = request.__dict__.setdefault("_learner_progress", {})
    if course.pk not in memo:
        memo[course.pk] = progress_rows(request.user, course)
    return memo[course.pk]


def _progress(request, course):
    """{lesson id: status} for this course, read once per request (outline, actions and the
    hook that records the visit share it)."""
    return {lesson_id: row[0] for lesson_id, row in rows_for_request(request, course).items()}


def _watched(request, course):
    """{lesson id: percent of its videos watched}, from the same read as _progress."""
    return {lesson_id: row[2] for lesson_id, row in rows_for_request(request, course).items()}


@register.inclusion_tag("learner/includes/lesson_outline.html", takes_context=True)
def lesson_outline(context, lesson, course):
    """The course outline beside a lesson: the cached curriculum with this learner's ticks and
    locks (their progress is one query, the access answer the gate's)."""
    request = context["request"]
    user = request.user
    open_all = course.is_free or has_access_for_request(request, course)
    status = _progress(request, course)
    watched = _watched(request, course)
    curriculum = course.curriculum(request)
    opens = (
        release.outline_opens(request, course, [i for m in curriculum for i in m.lesson_list])
        if open_all
        else {}
    )
    modules = [
        {
            "title": module.title,
            "lesson_list": [
                dict(
                    asdict(item),
                    progress=status.get(item.pk, ""),
                    locked=not (open_all or item.is_free_preview),
                    opens_at=opens.get(item.pk),
                    watched=watched.get(item.pk, 0),
                )
                for item in module.lesson_list
            ],
        }
        for module in curriculum
    ]
    total = sum(len(m["lesson_list"]) for m in modules)
    done = sum(1 for s in status.values() if s == "completed")
    return {
        "modules": modules,
        "current": lesson,
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "signed_in": user.is_authenticated,
    }


@register.inclusion_tag("learner/includes/lesson_actions.html", takes_context=True)
def lesson_actions(context, lesson):
    request = context["request"]
    user = request.user
    status = ""
    if user.is_authenticated:
        status = _progress(request, lesson.course()).get(lesson.pk, "")
    return {
        "lesson": lesson,
        "status": status,
        "signed_in": user.is_authenticated,
        "csrf_token": context.get("csrf_token"),
    }
