"""Find the page a URL names in one query instead of Wagtail's two per path segment.

Wagtail walks the tree from the site's root, one child lookup and one ``specific`` fetch per
segment (nine queries for a lesson). A page's ``url_path`` already spells its whole route, so
it is looked up directly; the page type is remembered in the cache so the specific row comes
in the same query. Anything not found this way (no such page, a RoutablePage's sub-route)
goes to Wagtail's own walk, so behaviour never differs, only the cost.
"""

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.http import Http404
from wagtail.models import Page, Site

TTL = 24 * 3600


def _fetch(content_type_id, url_path, root_path):
    model = ContentType.objects.get_for_id(content_type_id).model_class()
    if model is None:
        return None
    return model.objects.filter(url_path=url_path, path__startswith=root_path).first()


def find_page(request, path: str) -> Page | None:
    """The live-or-not page at ``path`` under the request's site, in its specific class."""
    if getattr(settings, "WAGTAIL_I18N_ENABLED", False):
        return None  # localized roots: leave routing to Wagtail
    site = Site.find_for_request(request)
    if site is None:
        return None
    root = site.root_page
    url_path = root.url_path + "".join(f"{part}/" for part in path.split("/") if part)
    key = f"page-type:{url_path}"
    content_type_id = cache.get(key)
    if content_type_id is not None:
        # The filter on url_path checks the remembered type: a moved or deleted page misses.
        page = _fetch(content_type_id, url_path, root.path)
        if page is not None:
            return page
    row = (
        Page.objects.filter(url_path=url_path, path__startswith=root.path)
        .values_list("content_type_id", flat=True)
        .first()
    )
    if row is None:
        return None
    cache.set(key, row, TTL)
    return _fetch(row, url_path, root.path)


def route_for_request(request, path):
    """Wagtail's route for this request, found by url_path when possible.

    The result is left where Wagtail's ``Page.route_for_request`` keeps it for the request
    (``request._wagtail_route_for_request``), so Wagtail's serve view and every later lookup
    use it."""
    if hasattr(request, "_wagtail_route_for_request"):
        return
    page = find_page(request, path)
    if page is None:
        return  # Wagtail walks the tree itself
    try:
        request._wagtail_route_for_request = page.route(request, [])
    except Http404:
        request._wagtail_route_for_request = None
