from django import template
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from wagtail.admin.templatetags.wagtailuserbar import wagtailuserbar

register = template.Library()

SESSION_KEY = "may_edit"


@receiver(user_logged_in, dispatch_uid="base.remember_editor")
def remember_editor(sender, request, user, **kwargs):
    """Whether the Wagtail userbar is worth asking for, known once per login."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = user.has_perm("wagtailadmin.access_admin")


@register.simple_tag(takes_context=True)
def userbar_for_editors(context):
    """Wagtail's userbar for those who may edit, without two permission queries on every page
    a learner reads. The admin itself checks permissions on every request; this only decides
    whether to show the shortcut."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    if SESSION_KEY not in request.session:  # logged in before this was remembered
        request.session[SESSION_KEY] = user.has_perm("wagtailadmin.access_admin")
    return wagtailuserbar(context) if request.session[SESSION_KEY] else ""
