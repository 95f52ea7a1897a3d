"""How every gate answers: never cached, login for visitors, the locked page for the rest."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
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
