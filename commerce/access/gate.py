"""How every gate answers: never cached, login for visitors, the locked page for the rest."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import resolve_url
from django.template.response import TemplateResponse
from django.utils.cache import patch_cache_control


def private(response):
    patch_cache_control(response, private=True, no_store=True)
    return response


def refuse(request, lesson, course, *, offer_to_visitors=False):
    """403 with the locked page offering the course (and, for a visitor, a log-in link back
    here); a visitor asking for a file or an action is sent to log in and come back."""
    if not request.user.is_authenticated and not (offer_to_visitors and course is not None):
        return private(redirect_to_login(request.get_full_path()))
    login_url = f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': request.get_full_path()})}"
    return _forbidden(request, "commerce/locked.html", lesson, course, login_url=login_url)


def not_yet_open(request, lesson, course, moment):
    """403 saying when the lesson opens: its title and summary only, never its body or files."""
    return _forbidden(request, "commerce/not_yet_open.html", lesson, course, opens_at=moment)


def _forbidden(request, template, lesson, course, **context):
    response = TemplateResponse(
        request, template, {"page": lesson, "course": course, **context}, status=403
    )
    return private(response.render())


def why_closed(request, lesson, course):
    """None when this request may use the lesson — read it, fetch its files, answer its quiz,
    record progress in it — else (reason, when it opens). The same questions, in the same order,
    as serving its page: Wagtail's privacy settings, access to the course, drip release."""
    from commerce.access import has_access_for_request, release

    if course is None:
        return ("locked", None)
    for restriction in lesson.get_view_restrictions():
        if not restriction.accept_request(request):
            return ("restricted", None)
    if not (lesson.is_free_preview or has_access_for_request(request, course)):
        return ("locked", None)
    moment = release.not_open_until(request.user, lesson, course, request)
    return ("not_yet_open", moment) if moment else None


def refusal(request, lesson, course, why):
    """The answer for a closed lesson (see why_closed) to a page or action request."""
    reason, moment = why
    if reason == "not_yet_open":
        return not_yet_open(request, lesson, course, moment)
    if reason == "restricted":
        if not request.user.is_authenticated:
            return private(redirect_to_login(request.get_full_path()))
        raise PermissionDenied("This lesson is private.")
    return refuse(request, lesson, course)
