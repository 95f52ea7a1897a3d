from django.conf import settings
from django.db import connection
from django.http import Http404, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.static import serve


@never_cache
@require_GET
def healthz(request):
    """Liveness for load balancers: answers 503 when the database does not."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        checks["database"] = f"error: {exc.__class__.__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )


PUBLIC_MEDIA_PREFIXES = ("images/", "original_images/")


def public_media(request, path):
    """Serve public images only; documents go through Wagtail's gated view, never from here."""
    if not path.startswith(PUBLIC_MEDIA_PREFIXES) or ".." in path:
        raise Http404("Not a public file.")
    return serve(request, path, document_root=settings.MEDIA_ROOT)
