from django.template.loader import render_to_string
from wagtail import hooks

from courses.models import LessonPage
from learner.progress import record_open


def _record(page, request):
    course = page.course()
    if course is None:
        return
    # The page read this learner's progress already (learner_tags._progress): the visit is
    # written only when the row is missing or older than learner.progress.SEEN_EVERY.
    read = request.__dict__.get("_learner_progress", {}).get(course.pk)
    row = read.get(page.pk) if read is not None else None
    record_open(request.user, page, course, seen_at=row[1] if row else None)


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
            if hasattr(response, "add_post_render_callback"):  # once the page has read progress
                response.add_post_render_callback(lambda _: _record(page, request))
            else:
                _record(page, request)
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


@hooks.register("courses_quiz")
def quiz_slot(context, lesson, block):
    """A quiz in the lesson: prompts and choices by id (never which are right), and the
    learner's latest attempt with its explanations."""
    from django.middleware.csrf import get_token

    from learner import quizzes
    from learner.templatetags.learner_tags import rows_for_request

    request = context.get("request")
    quiz = quizzes.from_block(block)
    signed_in = bool(request and request.user.is_authenticated)
    course = lesson.course()
    row = rows_for_request(request, course).get(lesson.pk) if signed_in and course else None
    attempt = quizzes.latest_shown(row[4].get(quiz.id) if row else None)
    return render_to_string(
        "learner/includes/quiz.html",
        {
            "quiz": {
                "id": quiz.id,
                "title": quiz.title,
                "pass_mark": quiz.pass_mark,
                "required": quiz.required,
            },
            "questions": quizzes.as_shown(quiz, attempt),
            "lesson": lesson,
            "attempt": attempt,
            "token": quizzes.new_token(),
            "signed_in": signed_in,
            "csrf_token": get_token(request) if signed_in else "",
        },
        request=request,
    )


@hooks.register("courses_stream_player")
def video_progress_slot(context, video_uid):
    """Beside the player commerce renders: where this learner is in the video, and what the
    player's script reports to (static/js/video-progress.js)."""
    from django.middleware.csrf import get_token
    from django.urls import reverse

    from commerce.access import has_access_for_request
    from learner import video

    page, request = context.get("page"), context.get("request")
    if not isinstance(page, LessonPage) or request is None or not request.user.is_authenticated:
        return ""
    course = page.course()
    if course is None or not (page.is_free_preview or has_access_for_request(request, course)):
        return ""
    from learner.templatetags.learner_tags import rows_for_request

    row = rows_for_request(request, course).get(page.pk)  # the outline's read, shared
    points = video.resume_points(row[3] if row else {})
    position, furthest, duration = points.get(video_uid, (0, 0, 0))
    return render_to_string(
        "learner/includes/video_progress.html",
        {
            "url": reverse("video_progress", args=[page.pk]),
            "video_uid": video_uid,
            "position": position,
            "furthest": furthest,
            "percent": min(100, int(100 * furthest / duration)) if duration else 0,
            "csrf_token": get_token(request),
        },
        request=request,
    )


# --- the instructors' report (learner.admin_views) -------------------------------------------


@hooks.register("register_admin_urls")
def register_progress_report_urls():
    from django.urls import path

    from learner.admin_views import LearnerProgressReport

    return [
        path(
            "reports/learners/",
            LearnerProgressReport.as_view(),
            name="learner_progress_report",
        ),
        path(
            "reports/learners/results/",
            LearnerProgressReport.as_view(results_only=True),
            name="learner_progress_report_results",
        ),
    ]


@hooks.register("register_reports_menu_item")
def register_progress_report():
    from django.urls import reverse
    from wagtail.admin.menu import MenuItem

    class ProgressMenuItem(MenuItem):
        def is_shown(self, request):
            return request.user.has_perm("learner.view_lessonprogress")

    return ProgressMenuItem(
        "Learner progress", reverse("learner_progress_report"), icon_name="group", order=710
    )


@hooks.register("register_permissions")
def register_learner_permissions():
    """Settings → Groups can give instructors the progress report."""
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(
        content_type__app_label="learner", codename="view_lessonprogress"
    )
