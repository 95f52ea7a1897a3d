"""What every visitor sees the same way — a course's outline, the catalog, the home page's
featured courses — is built once and read from Django's cache (Redis when configured).

One number, the content generation, is part of every key. Wagtail's publish, unpublish, move
and delete signals (and view restrictions, sites and images, which change what a listing
shows) move it on, so the next request rebuilds. Keys also expire after ``TTL``: a bound for
per-process caches, which one process cannot invalidate for another. Nothing here decides
who has access: gates ask the database whether a learner may open a course. What they read
from here is published content, rebuilt on publish like the rest: a lesson's drip-release
rule comes with the outline.
"""

import time

from django.core.cache import cache
from django.db import transaction

KEY = "content-generation"
TTL = 3600


def generation() -> int:
    value = cache.get(KEY)
    if value is None:
        # A fresh number (not 1) so keys built before a cache flush can never be read again.
        cache.add(KEY, time.time_ns(), None)
        value = cache.get(KEY) or time.time_ns()
    return value


def bump(**kwargs) -> None:
    """Every cached view of the content is stale from now on, and again once the change
    commits: a request served between the two would otherwise cache the old rows under the
    new generation."""
    _move_on()
    transaction.on_commit(_move_on)


def _move_on() -> None:
    try:
        cache.incr(KEY)
    except ValueError:  # no generation yet (or the cache restarted)
        cache.set(KEY, time.time_ns(), None)


def cached(name: str, *parts, build, request=None):
    """``build()``'s answer for this generation of the content, built at most once per TTL.
    A preview (a draft rendered for an editor) builds afresh and caches nothing."""
    if request is not None and getattr(request, "is_preview", False):
        return build()
    key = ":".join([name, str(generation()), *map(str, parts)])
    return cache.get_or_set(key, build, TTL)


def connect() -> None:
    """Move the generation on whenever published content changes (called from ready())."""
    from django.db.models.signals import post_delete, post_save
    from wagtail.images import get_image_model
    from wagtail.models import Page, PageViewRestriction, Site
    from wagtail.signals import page_published, page_unpublished, post_page_move

    def on_page_deleted(sender, instance, **kwargs):
        if isinstance(instance, Page):
            bump()

    page_published.connect(bump, dispatch_uid="courses-caching-published")
    page_unpublished.connect(bump, dispatch_uid="courses-caching-unpublished")
    post_page_move.connect(bump, dispatch_uid="courses-caching-moved")
    post_delete.connect(on_page_deleted, dispatch_uid="courses-caching-deleted")
    for model in (PageViewRestriction, Site, get_image_model()):
        post_save.connect(bump, sender=model, dispatch_uid=f"courses-caching-{model.__name__}")
        post_delete.connect(
            bump, sender=model, dispatch_uid=f"courses-caching-{model.__name__}-deleted"
        )
