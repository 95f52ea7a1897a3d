from django import template

from commerce.access import has_course_access
from learner.progress import progress_by_lesson

register = template.Library()


def _progress(request, course):
    """Progress rows for this course, read once per request (outline and actions share it)."""
    memo = request.__dict__.setdefault("_learner_progress", {})
    if course.pk not in memo:
        memo[course.pk] = progress_by_lesson(request.user, course)
    return memo[course.pk]


@register.inclusion_tag("learner/includes/lesson_outline.html", takes_context=True)
def lesson_outline(context, lesson, course):
    """The course outline beside a lesson: progress ticks and locks, three queries."""
    request = context["request"]
    user = request.user
    open_all = course.is_free or has_course_access(user, course)
    status = _progress(request, course)
    modules = course.curriculum()
    for module in modules:
        for item in module.lesson_list:
            item.progress = status.get(item.pk, "")
            item.locked = not (open_all or item.is_free_preview)
    total = sum(len(m.lesson_list) for m in modules)
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
