from django.conf import settings
from django.urls import include, path, re_path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls
from wagtail.documents import urls as wagtaildocs_urls

from base import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", include(wagtailadmin_urls)),
    path("documents/", include(wagtaildocs_urls)),
    path("accounts/", include("allauth.urls")),
    path("", include("commerce.urls")),
    path("", include("learner.urls")),
]

if settings.SERVE_MEDIA:
    urlpatterns.append(path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", views.public_media))

# Wagtail's utility views as they are; pages served by Wagtail's view once base.routing has
# found them by url_path (same pattern and name, so page URLs reverse as before).
urlpatterns += [p for p in wagtail_urls.urlpatterns if p.name != "wagtail_serve"]
urlpatterns += [re_path(wagtail_urls.serve_pattern, views.serve_page, name="wagtail_serve")]
