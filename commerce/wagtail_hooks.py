"""Gating attaches to content here, so course pages stay ignorant of money."""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.template.loader import render_to_string
from wagtail import hooks

from base import caching
from commerce.access import has_access_for_request, release
from commerce.access.documents import may_fetch
from commerce.access.gate import not_yet_open, private, refuse
from courses.models import LessonPage

# --- what commerce adds to course pages (see courses.templatetags.course_tags.slot) -------


@dataclass(frozen=True)
class Download:
    """A lesson's file as its page lists it (the link goes through the gate)."""

    pk: int
    title: str
    extension: str
    description: str


def downloads(lesson, request=None):
    """The lesson's files as the page lists them (title, extension, description): saved with
    the lesson, so cached until the next publish. Each link still goes through the gate."""

    def build():
        return tuple(
            Download(pk=r.pk, title=r.title, extension=r.extension, description=r.description)
            for r in lesson.resources.all()
        )

    return caching.cached("downloads", lesson.pk, build=build, request=request)


def _render(template, context, data):
    return render_to_string(template, data, request=context.get("request"))


@hooks.register("courses_buy_box")
def buy_box_slot(context, course):
    from commerce.templatetags.commerce_tags import buy_box

    return _render("commerce/includes/buy_box.html", context, buy_box(context, course))


@hooks.register("courses_stream_player")
def stream_player_slot(context, video_uid):
    from commerce.templatetags.commerce_tags import stream_player

    return _render(
        "commerce/includes/stream_player.html", context, stream_player(context, video_uid)
    )


@hooks.register("courses_lesson_downloads")
def lesson_downloads_slot(context, lesson):
    return _render(
        "commerce/includes/downloads.html",
        context,
        {"resources": downloads(lesson, context.get("request"))},
    )


@hooks.register("before_serve_page")
def gate_paid_lessons(page, request, serve_args, serve_kwargs):
    if not isinstance(page, LessonPage) or page.is_free_preview:
        return None
    course = page.course()
    if course is None:  # not below a course (placed by code): nobody sells it, nobody reads it
        raise PermissionDenied
    if not has_access_for_request(request, course):
        return refuse(request, page, course, offer_to_visitors=True)
    moment = release.not_open_until(request.user, page, course, request)
    return not_yet_open(request, page, course, moment) if moment else None


@hooks.register("on_serve_page")
def lessons_are_never_cached(next_serve_page):
    def serve(page, request, args, kwargs):
        response = next_serve_page(page, request, args, kwargs)
        if isinstance(page, LessonPage):
            private(response)
        return response

    return serve


@hooks.register("before_serve_document")
def gate_documents(document, request):
    """Documents are private by default; see commerce.documents for who may fetch one."""
    allowed, offer = may_fetch(request.user, document)
    if allowed:
        return None
    if offer is not None or not request.user.is_authenticated:
        lesson, course = offer or (None, None)
        return refuse(request, lesson, course)
    raise PermissionDenied


# --- admin ---------------------------------------------------------------------------------


@hooks.register("register_admin_viewset")
def register_commerce_viewsets():
    from commerce.backoffice.viewsets import CommerceGroup

    return CommerceGroup()


@hooks.register("healthz_details")
def last_reconciliation():
    """Operators alert when this is older than an hour (docs/operations.md)."""
    from commerce.payments.reconciliation import last_successful_reconciliation

    run = last_successful_reconciliation()
    return {"last_reconciliation": run.finished_at.isoformat() if run else None}


@hooks.register("construct_homepage_panels")
def shop_panel(request, panels):
    """Money at a glance, for those who may see orders."""
    if request.user.has_perm("commerce.view_order"):
        from commerce.backoffice.dashboard import ShopPanel

        panels.append(ShopPanel())


@hooks.register("register_admin_urls")
def register_commerce_admin_urls():
    from django.urls import path

    from commerce.backoffice import admin_views

    return [
        path(
            "commerce/grant/", admin_views.GrantAccessView.as_view(), name="commerce_grant_access"
        ),
        path(
            "commerce/entitlements/<int:pk>/revoke/",
            admin_views.RevokeAccessView.as_view(),
            name="commerce_revoke_access",
        ),
        path(
            "commerce/stripe-events/<int:pk>/replay/",
            admin_views.ReplayEventView.as_view(),
            name="commerce_replay_event",
        ),
        path(
            "commerce/orders/<int:pk>/refund/",
            admin_views.RefundOrderView.as_view(),
            name="commerce_refund_order",
        ),
        path("commerce/reconcile/", admin_views.ReconcileView.as_view(), name="commerce_reconcile"),
        path("reports/sales/", admin_views.SalesReportView.as_view(), name="commerce_sales"),
        path(
            "reports/sales/results/",
            admin_views.SalesReportView.as_view(results_only=True),
            name="commerce_sales_results",
        ),
    ]


@hooks.register("register_reports_menu_item")
def register_sales_report():
    from django.urls import reverse
    from wagtail.admin.menu import MenuItem

    class SalesMenuItem(MenuItem):
        def is_shown(self, request):
            return request.user.has_perm("commerce.view_order")

    return SalesMenuItem("Sales", reverse("commerce_sales"), icon_name="doc-full", order=700)


@hooks.register("register_reports_menu_item")
def register_reconcile_item():
    from django.urls import reverse
    from wagtail.admin.menu import MenuItem

    class ReconcileMenuItem(MenuItem):
        def is_shown(self, request):
            return request.user.has_perm("commerce.reconcile_order")

    return ReconcileMenuItem(
        "Reconcile with Stripe", reverse("commerce_reconcile"), icon_name="rotate", order=710
    )


@hooks.register("register_log_actions")
def register_commerce_log_actions(actions):
    actions.register_action("commerce.grant", "Grant access", "Access granted")
    actions.register_action("commerce.revoke", "Revoke access", "Access revoked")
    actions.register_action("commerce.replay", "Replay Stripe event", "Stripe event replayed")


@hooks.register("register_permissions")
def register_commerce_permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="commerce")
