from django.template.loader import render_to_string
from wagtail import hooks

from courses.models import LessonPage
from learner.progress import record_open


@hooks.register("on_serve_page")
def remember_opened_lessons(next_serve_page):
    """A lesson served successfully to a signed-in learner is in progress."""

    def serve(page, request, args, kwargs):
        response = next_serve_page(page, request, args, kwargs)
        if (
            isinstance(page, LessonPage)
            and response.status_code == 200
            and request.user.is_authenticated
        ):
            course = page.course()
            if course is not None:
                record_open(request.user, page, course)
        return response

    return serve


# --- what the learner's world adds to lesson pages (courses.templatetags.course_tags.slot) ---


@hooks.register("courses_lesson_outline")
def lesson_outline_slot(context, lesson, course):
    from learner.templatetags.learner_tags import lesson_outline

    return render_to_string(
        "learner/includes/lesson_outline.html",
        lesson_outline(context, lesson, course),
        request=context.get("request"),
    )


@hooks.register("courses_lesson_actions")
def lesson_actions_slot(context, lesson):
    from learner.templatetags.learner_tags import lesson_actions

    return render_to_string(
        "learner/includes/lesson_actions.html",
        lesson_actions(context, lesson),
        request=context.get("request"),
    )
