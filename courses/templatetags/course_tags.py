from django import template

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
