from django import template
from django.conf import settings

from base.money import format_money

register = template.Library()


@register.simple_tag
def money(amount, currency):
    if amount is None:
        return ""
    return format_money(amount, currency)


@register.inclusion_tag("commerce/includes/buy_box.html", takes_context=True)
def buy_box(context, course):
    """Buy, enrol or continue — what the visitor can do with this course or bundle."""
    from commerce.access import has_access_for_request, opened_for
    from commerce.forms import GiftForm, GuestCheckoutForm
    from courses.models import BundlePage

    request = context["request"]
    user = request.user
    is_bundle = isinstance(course, BundlePage)
    if is_bundle:
        courses = context.get("courses")
        courses = course.courses() if courses is None else courses
        owned = opened_for(user, courses) if user.is_authenticated else []
        has_access = bool(courses) and len(owned) == len(courses)
        first_lesson = None
    else:
        courses, owned = [course], []
        has_access = not course.is_free and has_access_for_request(request, course)
        first_lesson = course.first_lesson(request)
    plans = []
    if not is_bundle and not course.is_free:
        from commerce.billing.memberships import plans_including

        plans = plans_including(course)
    return {
        "request": request,
        "course": course,
        "is_bundle": is_bundle,
        "on_sale": bool(courses),
        "owned": owned,
        "user": user,
        "has_access": has_access,
        "first_lesson": first_lesson,
        "form": GuestCheckoutForm(),
        "gift_form": GiftForm(auto_id="gift_%s"),
        "plans": plans,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("commerce/includes/stream_player.html", takes_context=True)
def stream_player(context, video_uid):
    """A Stream iframe for whoever may open this lesson; signed when keys are configured."""
    from commerce.access import has_access_for_request
    from commerce.access.stream import embed_url

    page = context.get("page")
    request = context.get("request")
    course = page.course() if page is not None and hasattr(page, "course") else None
    allowed = bool(
        course and request and (page.is_free_preview or has_access_for_request(request, course))
    )
    local = "" if settings.STREAM_CUSTOMER_CODE else settings.STREAM_LOCAL_VIDEO
    return {
        "src": (local or embed_url(video_uid)) if allowed else "",
        "local": bool(local),
        "video_uid": video_uid,
        "title": getattr(page, "title", ""),
    }
