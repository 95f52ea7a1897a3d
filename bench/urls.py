from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def floor(request, round_trips=0):
    """The cheapest honest webhook: read the body, one INSERT, answer JSON. ``round_trips``
    more statements that do nothing (bench.probe: what a round trip costs under load)."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor (payload) VALUES (%s)", [request.body.decode()])
        for _ in range(round_trips):
            cursor.execute("SELECT 1")
    return JsonResponse({"received": True})


# The site's own settings as the base template reads them, without asking the database.
NO_SETTINGS = {"config": {"SiteSettings": {"footer_text": "", "support_email": ""}}}


def page_floor(request):
    """The cheapest honest page: the site's base template rendered, no query (no session
    cookie is sent, the site settings are given)."""
    return render(request, "base.html", {"settings": NO_SETTINGS})


urlpatterns = [
    path("bench/floor/", floor),
    path("bench/floor/<int:round_trips>/", floor),
    path("bench/page-floor/", page_floor),
    path("", include("config.urls")),
]
