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
