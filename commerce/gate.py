"""How every gate answers: never cached, login for visitors, the locked page for the rest."""

from django.contrib.auth.views import redirect_to_login
from django.template.response import TemplateResponse
from django.utils.cache import patch_cache_control


def private(response):
    patch_cache_control(response, private=True, no_store=True)
    return response


def refuse(request, lesson, course):
    """Anonymous → log in and come back; signed in without access → 403 offering the course."""
    if not request.user.is_authenticated:
        return private(redirect_to_login(request.get_full_path()))
    response = TemplateResponse(
        request, "commerce/locked.html", {"page": lesson, "course": course}, status=403
    )
    return private(response.render())
