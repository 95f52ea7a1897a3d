"""Wagtail admin for money: read-only listings, audited actions. Editors see none of it
unless an administrator gives their group the commerce view permissions."""

import django_filters
from django import forms
from django.db.models import Q
from django.forms.utils import flatatt
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.ui.tables import Column, DateColumn
from wagtail.admin.views.generic import IndexView, InspectView
from wagtail.admin.viewsets.base import ViewSetGroup
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.widgets.button import HeaderButton
from wagtail.permission_policies import ModelPermissionPolicy

from base.money import format_money
from commerce.models import (
    DownloadEvent,
    Entitlement,
    Membership,
    MembershipPlan,
    Order,
    ReconciliationRun,
    StripeEvent,
)
from commerce.payments import refunds
from courses.models import CoursePage


class ReadOnlyPolicy(ModelPermissionPolicy):
    """Money rows change only through fulfilment and audited actions, never by form."""

    def user_has_permission(self, user, action):
        if action in ("add", "change", "delete", "copy"):
            return False
        return super().user_has_permission(user, action)

    def user_has_any_permission(self, user, actions):
        return any(self.user_has_permission(user, action) for action in actions)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """A text cell a spreadsheet would run as a formula is exported as plain text (OWASP's
    CSV injection advice): buyers choose their e-mail, downloaders their User-Agent."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeExportIndexView(IndexView):
    """Every CSV/XLSX export of the commerce listings goes through here."""

    def preprocess_field_value(self, field, value, export_format):
        return spreadsheet_safe(super().preprocess_field_value(field, value, export_format))

    def get_list_more_buttons(self, instance):
        """Read-only rows: the title already opens the one view there is (inspect), so no
        per-row "More" menu (a fifth of the order list's rendering time)."""
        return []


class QuickSelect(forms.Select):
    """Django renders each <option> through a template of its own; with one option per course
    that was a quarter of the order list's time. The same markup, built in one pass."""

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        final["name"] = name
        chosen = {str(v) for v in self.format_value(value)}
        options = format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            (
                (str(key), mark_safe(" selected") if str(key) in chosen else "", label)
                for key, label in self.choices
            ),
        )
        return format_html("<select{}>{}</select>", flatatt(final), options)


def course_choices():
    """Every course by title, as (id, title) pairs: no page objects built to fill a menu."""
    return list(CoursePage.objects.order_by("title").values_list("id", "title"))


def course_choice(**kwargs):
    """A filter by course, for listings whose rows name one."""
    return django_filters.ChoiceFilter(
        choices=course_choices, widget=QuickSelect, label="Course", **kwargs
    )


class ReadOnlyViewSet(ModelViewSet):
    """Listing, filters, export and inspect; the policy refuses add, edit and delete."""

    index_view_class = SafeExportIndexView
    exclude_form_fields = []
    # Money rows reference nothing editors manage; indexing them costs every webhook a query.
    add_to_reference_index = False
    copy_view_enabled = False
    inspect_view_enabled = True
    add_to_admin_menu = False


class MoneyColumn(Column):
    def get_value(self, instance):
        amount = getattr(instance, self.accessor)
        return format_money(amount, instance.currency) if amount is not None else "—"


OUTCOMES = {
    "open": ("Checkout open", lambda qs, now: qs.filter(status="pending", expires_at__gt=now)),
    "abandoned": (
        "Abandoned",
        lambda qs, now: qs.filter(Q(status="expired") | Q(status="pending", expires_at__lte=now)),
    ),
    "processing": ("Payment processing", lambda qs, now: qs.filter(status="processing")),
    "failed": ("Payment failed", lambda qs, now: qs.filter(status="failed")),
    "paid": ("Paid", lambda qs, now: qs.filter(status="paid")),
    "refunded": (
        "Refunded (fully or partly)",
        lambda qs, now: qs.filter(status__in=["refunded", "partially_refunded"]),
    ),
    "disputed": ("Disputed", lambda qs, now: qs.filter(status="disputed")),
    "needs_review": ("Needs review", lambda qs, now: qs.filter(status="needs_review")),
}


class OrderFilterSet(WagtailFilterSet):
    outcome = django_filters.ChoiceFilter(
        choices=[(key, label) for key, (label, _) in OUTCOMES.items()],
        method="filter_outcome",
        label="Outcome",
    )
    course = course_choice(field_name="items__course", distinct=True)
    created_at = django_filters.DateFromToRangeFilter(label="Created", widget=DateRangePickerWidget)
    paid_since = django_filters.DateFilter(
        field_name="paid_at", lookup_expr="date__gte", label="Paid on or after"
    )
    email = django_filters.CharFilter(field_name="email", lookup_expr="icontains")

    class Meta:
        model = Order
        fields = ["status", "currency"]

    def filter_outcome(self, queryset, name, value):
        return OUTCOMES[value][1](queryset, timezone.now())


class OrderIndexView(SafeExportIndexView):
    def get_base_queryset(self):
        return super().get_base_queryset().select_related("gift").prefetch_related("items")


class OrderInspectView(InspectView):
    template_name = "commerce/admin/order_inspect.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        order = self.object
        context["items"] = order.items.select_related("entitlement__user")
        context["gift"] = getattr(order, "gift", None)
        context["timeline"] = order.events.select_related("actor")
        context["ledger"] = order.stripe_events.all()
        context["refunds"] = order.refunds.all()
        context["disputes"] = order.disputes.all()
        context["refund_requests"] = order.refund_requests.select_related("requested_by")
        if self.request.user.has_perm("commerce.refund_order") and refunds.full_amount(order):
            context["refund_url"] = reverse("commerce_refund_order", args=[order.pk])
        context["money"] = {
            "subtotal": format_money(order.amount_subtotal, order.currency),
            "total": format_money(order.amount_total, order.currency)
            if order.amount_total is not None
            else "—",
            "discount": format_money(order.amount_discount, order.currency),
            "refunded": format_money(order.amount_refunded, order.currency),
        }
        return context


class OrderViewSet(ReadOnlyViewSet):
    model = Order
    name = "commerce_order"
    icon = "list-ul"
    menu_label = "Orders"
    url_prefix = "commerce/orders"
    index_view_class = OrderIndexView
    list_display = [
        "public_id",
        "email",
        Column("description", label="What"),
        Column("outcome", label="Status"),
        MoneyColumn("amount_subtotal", label="Price"),
        MoneyColumn("amount_total", label="Paid"),
        DateColumn("created_at", label="Created"),
    ]
    filterset_class = OrderFilterSet
    search_fields = ["public_id", "email", "stripe_session_id", "stripe_payment_intent_id"]
    search_backend_name = None
    list_export = [
        "public_id",
        "email",
        "course_titles",
        "bundle_title",
        "items_display",
        "gift_recipient",
        "status",
        "outcome",
        "currency",
        "subtotal_display",
        "amount_subtotal",
        "amount_discount",
        "total_display",
        "amount_total",
        "refunded_display",
        "amount_refunded",
        "created_at",
        "paid_at",
        "stripe_session_id",
        "stripe_payment_intent_id",
    ]
    export_headings = {
        "course_titles": "Courses",
        "bundle_title": "Bundle",
        "items_display": "Items at their share of the price",
        "gift_recipient": "Gift for",
        "subtotal_display": "Price",
        "amount_subtotal": "Price (minor units)",
        "amount_discount": "Discount (minor units)",
        "total_display": "Paid",
        "amount_total": "Paid (minor units)",
        "refunded_display": "Refunded",
        "amount_refunded": "Refunded (minor units)",
    }
    export_filename = "orders"
    inspect_view_enabled = True
    inspect_view_class = OrderInspectView
    copy_view_enabled = False


class EntitlementIndexView(SafeExportIndexView):
    @property
    def header_buttons(self):
        buttons = list(super().header_buttons)
        if self.request.user.has_perm("commerce.grant_entitlement"):
            buttons.append(
                HeaderButton("Grant access", url=reverse("commerce_grant_access"), icon_name="plus")
            )
        return buttons


class EntitlementInspectView(InspectView):
    template_name = "commerce/admin/entitlement_inspect.html"


class EntitlementViewSet(ReadOnlyViewSet):
    model = Entitlement
    name = "commerce_entitlement"
    icon = "key"
    menu_label = "Entitlements"
    url_prefix = "commerce/entitlements"
    index_view_class = EntitlementIndexView
    list_display = [
        "email",
        "user",
        "course",
        "status",
        "source",
        "reason",
        DateColumn("granted_at", label="Granted"),
        DateColumn("expires_at", label="Expires"),
    ]
    list_filter = ["status", "source", "course"]
    search_fields = ["email", "reason"]
    search_backend_name = None
    list_export = [
        "email",
        "user_id",
        "course_id",
        "status",
        "source",
        "reason",
        "granted_at",
        "revoked_at",
        "expires_at",
    ]
    export_filename = "entitlements"
    inspect_view_enabled = True
    inspect_view_class = EntitlementInspectView
    copy_view_enabled = False


class StripeEventInspectView(InspectView):
    template_name = "commerce/admin/stripe_event_inspect.html"

    def get_context_data(self, **kwargs):
        import json

        context = super().get_context_data(**kwargs)
        context["payload"] = json.dumps(self.object.payload, indent=2, sort_keys=True)
        context["can_replay"] = self.request.user.has_perm("commerce.replay_stripeevent")
        return context


class StripeEventViewSet(ReadOnlyViewSet):
    model = StripeEvent
    name = "commerce_stripeevent"
    icon = "resubmit"
    menu_label = "Stripe events"
    url_prefix = "commerce/stripe-events"
    list_display = [
        "event_id",
        "type",
        "status",
        "attempts",
        "error",
        DateColumn("received_at", label="Received"),
    ]
    list_filter = ["status", "type", "livemode"]
    search_fields = ["event_id", "error"]
    search_backend_name = None
    inspect_view_enabled = True
    inspect_view_class = StripeEventInspectView
    inspect_view_fields = [
        "event_id",
        "type",
        "status",
        "error",
        "attempts",
        "livemode",
        "api_version",
        "order",
        "stripe_created",
        "received_at",
        "processed_at",
        "next_attempt_at",
    ]
    copy_view_enabled = False


class ReconciliationRunInspectView(InspectView):
    template_name = "commerce/admin/reconciliation_run_inspect.html"


class ReconciliationRunViewSet(ReadOnlyViewSet):
    model = ReconciliationRun
    name = "commerce_reconciliationrun"
    icon = "rotate"
    menu_label = "Reconciliation runs"
    url_prefix = "commerce/reconciliation-runs"
    list_display = [
        DateColumn("started_at", label="Started"),
        "triggered_by",
        "dry_run",
        "ok",
        Column("figures_text", label="Result"),
        "error",
    ]
    list_filter = ["ok", "dry_run"]
    inspect_view_enabled = True
    inspect_view_class = ReconciliationRunInspectView
    inspect_view_fields = ["started_at", "finished_at", "since", "triggered_by", "dry_run", "ok"]
    copy_view_enabled = False


class PlanViewSet(ModelViewSet):
    """Plans are edited by the shop owner: prices and courses inline. A plan with members is
    retired (untick Active), never deleted (its members' rows protect it)."""

    model = MembershipPlan
    name = "commerce_membershipplan"
    icon = "group"
    menu_label = "Membership plans"
    url_prefix = "commerce/membership-plans"
    add_to_admin_menu = False
    copy_view_enabled = False
    list_display = ["name", "active", "all_courses", Column("prices_text", label="Prices")]
    list_filter = ["active"]
    search_fields = ["name"]
    search_backend_name = None
    add_to_reference_index = False


class MembershipInspectView(InspectView):
    template_name = "commerce/admin/membership_inspect.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["invoices"] = self.object.invoices.all()
        context["timeline"] = self.object.events.all()
        return context


class MembershipIndexView(SafeExportIndexView):
    def get_base_queryset(self):
        return super().get_base_queryset().select_related("user", "plan")


class MembershipViewSet(ReadOnlyViewSet):
    model = Membership
    name = "commerce_membership"
    icon = "user"
    menu_label = "Memberships"
    url_prefix = "commerce/memberships"
    index_view_class = MembershipIndexView
    list_display = [
        "public_id",
        "user",
        "plan",
        Column("get_status_display", label="Status"),
        Column("price_display", label="Price"),
        DateColumn("current_period_end", label="Paid until"),
        DateColumn("access_until", label="Access until"),
    ]
    list_filter = ["plan", "status", "interval", "cancel_at_period_end"]
    search_fields = ["public_id", "user__email", "stripe_subscription_id", "stripe_customer_id"]
    search_backend_name = None
    list_export = [
        "public_id",
        "user_id",
        "plan_id",
        "status",
        "interval",
        "amount",
        "currency",
        "current_period_end",
        "cancel_at_period_end",
        "access_until",
        "created_at",
        "ended_at",
        "stripe_subscription_id",
    ]
    export_filename = "memberships"
    inspect_view_enabled = True
    inspect_view_class = MembershipInspectView
    copy_view_enabled = False


def register_policies():
    from wagtail.permissions import register_permission_policy

    for model in (Order, Entitlement, StripeEvent, ReconciliationRun, DownloadEvent, Membership):
        register_permission_policy(model, ReadOnlyPolicy(model))


class DownloadFilterSet(WagtailFilterSet):
    user = django_filters.CharFilter(
        field_name="user__email", lookup_expr="icontains", label="Learner e-mail"
    )
    course = django_filters.ModelChoiceFilter(queryset=CoursePage.objects.all())
    file_name = django_filters.CharFilter(lookup_expr="icontains", label="File")
    created_at = django_filters.DateFromToRangeFilter(label="When", widget=DateRangePickerWidget)

    class Meta:
        model = DownloadEvent
        fields = []


class DownloadIndexView(SafeExportIndexView):
    def get_base_queryset(self):
        return super().get_base_queryset().select_related("resource", "lesson", "course", "user")


class DownloadEventViewSet(ReadOnlyViewSet):
    model = DownloadEvent
    name = "commerce_downloadevent"
    icon = "download"
    menu_label = "Downloads"
    url_prefix = "commerce/downloads"
    index_view_class = DownloadIndexView
    list_display = [
        Column("title", label="File"),
        "user",
        "course",
        "lesson",
        "ip",
        DateColumn("created_at", label="When"),
    ]
    filterset_class = DownloadFilterSet
    list_export = [
        "created_at",
        "user_id",
        "title",
        "file_name",
        "course_id",
        "lesson_id",
        "ip",
        "user_agent",
    ]
    export_filename = "downloads"


class CommerceGroup(ViewSetGroup):
    menu_label = "Commerce"
    menu_icon = "tag"
    menu_order = 250
    items = (
        OrderViewSet,
        EntitlementViewSet,
        StripeEventViewSet,
        ReconciliationRunViewSet,
        DownloadEventViewSet,
        MembershipViewSet,
        PlanViewSet,
    )
