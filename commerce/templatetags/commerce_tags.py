from django import template

from courses.models import format_money

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
