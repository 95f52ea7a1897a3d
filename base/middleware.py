from django.core.cache import cache
from wagtail.models import Site

from base import caching

TTL = 3600


class CachedSiteMiddleware:
    """Wagtail looks up the request's Site with a query on every request (seven milliseconds
    of ORM work on a small machine), though sites change perhaps once a year. The answer is
    kept in the cache under the content generation, which every change to a site or a page
    moves on (base.caching), and left where Wagtail looks first (``request._wagtail_site``,
    see ``Site.find_for_request``). After CommonMiddleware: the host is an allowed one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Pages are read with GET; a webhook or a form post does not pay for the lookup.
        if request.method in ("GET", "HEAD") and not hasattr(request, "_wagtail_site"):
            request._wagtail_site = site_for(request)
        return self.get_response(request)


def site_for(request):
    key = f"site:{caching.generation()}:{request.get_host()}:{request.get_port()}"
    site = cache.get(key)
    if site is None:
        site = Site.find_for_request(request)
        if site is not None:
            site.root_page  # noqa: B018 - fetched now, so the cached site carries it
            cache.set(key, site, TTL)
    return site
