"""What every visitor sees the same way — a course's outline, the catalog, the home page's
featured courses — is built once and read from Django's cache (Redis when configured).

One number, the content generation, is part of every key. Wagtail's publish, unpublish, move
and delete signals (and view restrictions, sites and images, which change what a listing
shows) move it on, so the next request rebuilds. Keys also expire after ``TTL``: a bound for
per-process caches, which one process cannot invalidate for another. Nothing here decides
who has access: gates ask the database whether a learner may open a course. What they read
from here is published content, rebuilt on publish like the rest: a lesson's drip-release
rule comes with the outline.

Within one request each of these is read from the cache once: the generation and every value
built from it are remembered until the request ends (a lesson page asks for its course's
outline three times). One request then also reads one generation throughout. Outside a
request (tasks, commands) nothing is remembered. Values are shared within the request, so
they are immutable (tuples, frozen dataclasses).
"""

import logging
import time

from asgiref.local import Local
from django.core.cache import cache
from django.db import transaction

log = logging.getLogger(__name__)
_request = Local()  # this request's reads: {key: value}, or None outside a request

KEY = "content-generation"
TTL = 3600


def generation() -> int:
    memo = _memo()
    if memo is not None and KEY in memo:
        return memo[KEY]
    value = cache.get(KEY)
    if value is None:
        # A fresh number (not 1) so keys built before a cache flush can never be read again.
        cache.add(KEY, time.time_ns(), None)
        value = cache.get(KEY) or time.time_ns()
    if memo is not None:
        memo[KEY] = value
    return value


def _memo() -> dict | None:
    return getattr(_request, "memo", None)


def begin_request(**kwargs) -> None:
    _request.memo = {}


def end_request(**kwargs) -> None:
    _request.memo = None


def bump(**kwargs) -> None:
    """Every cached view of the content is stale from now on, and again once the change
    commits: a request served between the two would otherwise cache the old rows under the
    new generation. Until then this transaction stores nothing it reads (``cached`` builds
    afresh): a rollback would leave its uncommitted rows cached under the new generation."""
    connection = transaction.get_connection()
    own = [b for b in connection.atomic_blocks if not getattr(b, "_from_testcase", False)]
    if own:  # a test's own transaction (Django's TestCase) is not one the code opened
        connection.caching_changed_in = own[0]  # its outermost block: it ends the transaction
    _move_on()
    transaction.on_commit(_move_on)


def changed_in_this_transaction() -> bool:
    """Whether the open transaction changed content: what it reads is not committed yet.
    Once the block that changed it has ended (committed or rolled back) it no longer counts."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        connection.caching_changed_in = None
        return not connection.get_autocommit()  # set_autocommit(False): no block to go by
    changed = getattr(connection, "caching_changed_in", None)
    return changed is not None and any(b is changed for b in connection.atomic_blocks)


def _move_on() -> None:
    if (memo := _memo()) is not None:
        memo.clear()  # this request reads the new generation from now on
    try:
        moved = cache.incr(KEY)
    except ValueError:  # no generation yet (or the cache restarted)
        moved = None
    # A real generation is a large number; 1 is base.cache's answer while Redis is
    # unreachable. Try a fresh one; if that fails too, what was cached stays until the TTL.
    if moved is None or moved <= 1:
        fresh = time.time_ns()
        cache.set(KEY, fresh, None)
        if moved is not None and cache.get(KEY) != fresh:
            log.error(
                "content generation not moved on (cache unreachable): flush the cache once "
                "it is back, or cached pages may show what was just changed for up to %ss",
                TTL,
            )


def cached(name: str, *parts, build, request=None):
    """``build()``'s answer for this generation of the content, built at most once per TTL.
    A preview (a draft rendered for an editor), and a transaction that changed content,
    build afresh and cache nothing."""
    if request is not None and getattr(request, "is_preview", False):
        return build()
    if changed_in_this_transaction():
        return build()
    key = ":".join([name, str(generation()), *map(str, parts)])
    memo = _memo()
    if memo is not None and key in memo:
        return memo[key]
    value = cache.get_or_set(key, build, TTL)
    if memo is not None:
        memo[key] = value
    return value


# What Wagtail writes to a page's row while an editor works (autosave every pause in typing,
# locks, comments): nothing a visitor sees, so no reason to rebuild every cache on the site.
EDITING_FIELDS = frozenset(
    {
        "latest_revision",
        "latest_revision_created_at",
        "draft_title",
        "has_unpublished_changes",
        "locked",
        "locked_by",
        "locked_at",
        "wagtail_admin_comments",
    }
)


def _on_page_changed(sender, instance, update_fields=None, **kwargs):
    if update_fields is None or not set(update_fields) <= EDITING_FIELDS:
        bump()


def connect() -> None:
    """Move the generation on whenever published content changes, and remember reads for
    the length of a request (called from ready())."""
    from django.core.signals import request_finished, request_started
    from django.db.models.signals import post_delete, post_save
    from wagtail.images import get_image_model
    from wagtail.models import PageViewRestriction, Site, get_page_models
    from wagtail.signals import page_published, page_unpublished, post_page_move

    request_started.connect(begin_request, dispatch_uid="caching-request-started")
    request_finished.connect(end_request, dispatch_uid="caching-request-finished")
    page_published.connect(bump, dispatch_uid="courses-caching-published")
    page_unpublished.connect(bump, dispatch_uid="courses-caching-unpublished")
    post_page_move.connect(bump, dispatch_uid="courses-caching-moved")
    # Every save of a page, not only a publish: a page that is not live takes a draft's
    # fields straight into its row (a course's price), and aliases change by a plain save.
    # Connected per page class (a receiver for every model would turn off Django's fast
    # deletes everywhere), and at module level: signals hold receivers weakly.
    for model in get_page_models():
        label = model._meta.label
        post_save.connect(_on_page_changed, sender=model, dispatch_uid=f"caching-saved-{label}")
        post_delete.connect(_on_page_changed, sender=model, dispatch_uid=f"caching-deleted-{label}")
    for model in (PageViewRestriction, Site, get_image_model()):
        post_save.connect(bump, sender=model, dispatch_uid=f"courses-caching-{model.__name__}")
        post_delete.connect(
            bump, sender=model, dispatch_uid=f"courses-caching-{model.__name__}-deleted"
        )
