import time

from django import template
from django.core.paginator import Paginator
from django.utils.safestring import mark_safe
from wagtail import hooks
from wagtail.models import Site

from base import caching
from courses.models import CourseIndexPage, CoursePage

register = template.Library()


@register.simple_tag
def catalog_under(page):
    """The live catalog directly below ``page`` (the home page), or None."""
    return CourseIndexPage.objects.child_of(page).live().first()


@register.simple_tag
def featured_courses(page, count=3):
    """The first live, public courses below ``page``, with their covers in one query each."""
    return list(
        CoursePage.objects.descendant_of(page)
        .live()
        .public()
        .select_related("cover_image")
        .prefetch_related("cover_image__renditions")
        .order_by("path")[:count]
    )


@register.simple_tag(takes_context=True)
def content_generation(context):
    """For ``{% cache %}`` keys: fragments of published content rebuild when it changes, are
    kept per site (page URLs are relative to it), and a preview never shares them."""
    request = context.get("request")
    if request is not None and getattr(request, "is_preview", False):
        return f"preview-{time.time_ns()}"
    site = Site.find_for_request(request) if request is not None else None
    return f"{caching.generation()}-{site.pk if site else '-'}"


@register.simple_tag
def catalog_page(catalog, number):
    """One page of the catalog's courses (number already checked by the page)."""
    return Paginator(catalog.courses(), catalog.per_page).page(number)


@register.simple_tag(takes_context=True)
def slot(context, name, *args):
    """Where the apps above add to a course's pages (the buy box, downloads, progress): each
    function registered with the Wagtail hook ``courses_<name>`` returns HTML for ``*args``.
    The course templates know the slot, never the app that fills it."""
    return mark_safe(  # noqa: S308 - each hook renders an autoescaped template
        "".join(str(fn(context, *args)) for fn in hooks.get_hooks(f"courses_{name}"))
    )
