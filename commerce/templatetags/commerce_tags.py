from django import template

from base.money import format_money

register = template.Library()


@register.simple_tag
def money(amount, currency):
    if amount is None:
        return ""
    return format_money(amount, currency)


@register.inclusion_tag("commerce/includes/buy_box.html", takes_context=True)
def buy_box(context, course):
    """Buy, enrol or continue — what the visitor can do with this course."""
    from commerce.access import has_course_access
    from commerce.forms import GuestCheckoutForm

    request = context["request"]
    user = request.user
    has_access = not course.is_free and has_course_access(user, course)
    return {
        "request": request,
        "course": course,
        "user": user,
        "has_access": has_access,
        "first_lesson": course.first_lesson(),
        "form": GuestCheckoutForm(),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("commerce/includes/stream_player.html", takes_context=True)
def stream_player(context, video_uid):
    """A Stream iframe for whoever may open this lesson; signed when keys are configured."""
    from commerce.access import can_view_lesson
    from commerce.access.stream import embed_url

    page = context.get("page")
    request = context.get("request")
    course = page.course() if page is not None and hasattr(page, "course") else None
    allowed = bool(course and request and can_view_lesson(request.user, page, course))
    return {"src": embed_url(video_uid) if allowed else "", "title": getattr(page, "title", "")}
