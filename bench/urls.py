from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


@csrf_exempt
@require_POST
def floor(request):
    """The cheapest honest webhook: read the body, one INSERT, answer JSON."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor (payload) VALUES (%s)", [request.body.decode()])
    return JsonResponse({"received": True})


urlpatterns = [path("bench/floor/", floor), path("", include("config.urls"))]
