from django.conf import settings
from django.db import connection
from django.http import Http404, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.static import serve
from wagtail import hooks
from wagtail import views as wagtail_views

from base.routing import route_for_request


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def _check_broker():
    """django-q2's broker: Redis when configured, else the ORM (the database above)."""
    from django_q.brokers import get_broker

    broker = get_broker()
    if not broker.ping():
        return "error: broker did not answer"
    return "ok"


@never_cache
@require_GET
def healthz(request):
    """For load balancers and operators: 503 when the database or the task broker is down."""
    checks = {}
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            checks[name] = check()
        except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
            checks[name] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "error", "checks": checks}
    if checks["database"] == "ok":
        # Apps above this one add what an operator should watch (see their wagtail_hooks).
        for fn in hooks.get_hooks("healthz_details"):
            body.update(fn())
    return JsonResponse(body, status=200 if healthy else 503)


PUBLIC_MEDIA_PREFIXES = ("images/", "original_images/")


def public_media(request, path):
    """Serve public images only; documents go through Wagtail's gated view, never from here."""
    if not path.startswith(PUBLIC_MEDIA_PREFIXES) or ".." in path:
        raise Http404("Not a public file.")
    return serve(request, path, document_root=settings.MEDIA_ROOT)


def serve_page(request, path):
    """Wagtail's serve view, with the page found in one query (base.routing)."""
    route_for_request(request, path)
    return wagtail_views.serve(request, path)
