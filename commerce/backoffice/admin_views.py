"""Audited admin actions (grant, revoke, replay, reconcile) and the money reports."""

from datetime import datetime, time, timedelta

import django_filters
from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.generic import FormView, TemplateView, View
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.views.generic import PermissionCheckedMixin
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.views.reports import ReportView
from wagtail.permission_policies import ModelPermissionPolicy

from base.money import allocate, format_money
from commerce.backoffice import actions
from commerce.billing import memberships
from commerce.models import (
    Dispute,
    Entitlement,
    Order,
    OrderEvent,
    OrderItem,
    ReconciliationRun,
    Refund,
    StripeEvent,
)
from commerce.payments import gateway, reconciliation, refunds
from courses.models import CoursePage

PAID = [
    Order.Status.PAID,
    Order.Status.PARTIALLY_REFUNDED,
    Order.Status.REFUNDED,
    Order.Status.DISPUTED,
]


class CommerceAdminView(PermissionCheckedMixin, WagtailAdminTemplateMixin):
    """A commerce screen in the admin: its own title in the header and the browser tab."""

    def get_breadcrumbs_items(self):
        return [*self.breadcrumbs_items, {"url": "", "label": self.get_page_title()}]


class GrantForm(forms.Form):
    email = forms.EmailField(help_text="The learner's account e-mail, or a guest's address.")
    course = forms.ModelChoiceField(queryset=CoursePage.objects.order_by("title"))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
        help_text="Required; kept in the audit trail.",
    )
    expires_at = forms.DateTimeField(required=False, help_text="Optional, e.g. 2027-01-31 23:59")


class RevokeForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
        help_text="Required; kept in the audit trail.",
    )


class GrantAccessView(CommerceAdminView, FormView):
    permission_policy = ModelPermissionPolicy(Entitlement)
    permission_required = "grant"
    page_title = "Grant access"
    header_icon = "key"
    template_name = "commerce/admin/form.html"
    form_class = GrantForm

    def form_valid(self, form):
        data = form.cleaned_data
        email = data["email"].strip().lower()
        user = get_user_model().objects.filter(email__iexact=email).first()
        entitlement, created = actions.grant_access(
            course=data["course"],
            user=user,
            email=email,
            reason=data["reason"],
            actor=self.request.user,
            expires_at=data["expires_at"],
            via="admin",
        )
        if created:
            messages.success(self.request, f"Access to {data['course'].title} granted to {email}.")
        else:
            messages.info(self.request, f"{email} already has access to {data['course'].title}.")
        return redirect("commerce_entitlement:index")


class RevokeAccessView(CommerceAdminView, FormView):
    permission_policy = ModelPermissionPolicy(Entitlement)
    permission_required = "grant"
    page_title = "Revoke access"
    header_icon = "key"
    template_name = "commerce/admin/form.html"
    form_class = RevokeForm

    @cached_property
    def entitlement(self):  # looked up after the permission check, never before
        return get_object_or_404(Entitlement, pk=self.kwargs["pk"])

    def get_page_subtitle(self):
        return f"{self.entitlement.email} — {self.entitlement.course.title}"

    def form_valid(self, form):
        ent = self.entitlement
        revoked = actions.revoke_access(
            course=ent.course,
            user=ent.user,
            email=None if ent.user else ent.email,
            reason=form.cleaned_data["reason"],
            actor=self.request.user,
            via="admin",
        )
        messages.success(self.request, f"Revoked {len(revoked)} entitlement(s).")
        return redirect("commerce_entitlement:index")


class RefundForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("full", "Full refund of what is left"), ("partial", "Partial refund")],
        widget=forms.RadioSelect,
        initial="full",
        label="Refund",
    )
    amount = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        help_text="For a partial refund, in the order's currency, e.g. 12.50.",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=1000,
        help_text="Required; kept in the order's timeline.",
    )
    basis = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean(self):
        data = super().clean()
        if data.get("kind") == "partial" and data.get("amount") in (None, ""):
            self.add_error("amount", "Enter the amount to refund.")
        return data


class RefundOrderView(CommerceAdminView, FormView):
    """Ask Stripe for a refund; the order changes when Stripe confirms it."""

    permission_policy = ModelPermissionPolicy(Order)
    permission_required = "refund"
    page_title = "Refund order"
    header_icon = "undo"
    template_name = "commerce/admin/refund.html"
    form_class = RefundForm

    @cached_property
    def order(self):  # looked up after the permission check, never before
        return get_object_or_404(Order, pk=self.kwargs["pk"])

    def get_page_subtitle(self):
        return self.order.public_id

    def get_initial(self):
        return {**super().get_initial(), "basis": refunds.basis(self.order)}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        left = refunds.full_amount(self.order)
        context.update(
            order=self.order,
            refundable=format_money(left, self.order.currency),
            can_refund=left > 0,
            order_url=reverse("commerce_order:inspect", args=[self.order.pk]),
        )
        return context

    def form_valid(self, form):
        order, data = self.order, form.cleaned_data
        try:
            basis = refunds.read_basis(order, data["basis"])
            if data["kind"] == "full":
                amount = refunds.full_amount(order)
            else:
                amount = refunds.to_minor(data["amount"], order.currency)
            request, asked_now = refunds.request_refund(
                order.pk, amount=amount, reason=data["reason"], actor=self.request.user, basis=basis
            )
        except refunds.RefundRefused as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        shown = format_money(request.amount, request.currency)
        if asked_now:
            messages.success(
                self.request,
                f"Refund of {shown} requested from Stripe. The order shows it as refunded "
                "when Stripe confirms, usually within seconds.",
            )
        else:
            messages.info(self.request, f"A refund of {shown} was already requested.")
        return redirect(reverse("commerce_order:inspect", args=[order.pk]))


class ReplayEventView(PermissionCheckedMixin, View):
    permission_policy = ModelPermissionPolicy(StripeEvent)
    permission_required = "replay"

    def post(self, request, pk):
        row = get_object_or_404(StripeEvent, pk=pk)
        try:
            status = reconciliation.replay_event(
                row.event_id, actor=request.user, source=OrderEvent.Source.ADMIN
            )
            messages.success(request, f"Replayed {row.event_id}: {status}.")
        except Exception as exc:  # noqa: BLE001 - shown to the operator, recorded on the row
            messages.error(request, f"Replay of {row.event_id} failed: {exc}")
        return redirect("commerce_stripeevent:inspect", row.pk)


class ReconcileView(CommerceAdminView, TemplateView):
    permission_policy = ModelPermissionPolicy(Order)
    permission_required = "reconcile"
    page_title = "Reconcile with Stripe"
    header_icon = "rotate"
    template_name = "commerce/admin/reconcile.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["runs"] = ReconciliationRun.objects.all()[:10]
        return context

    def post(self, request):
        dry_run = bool(request.POST.get("dry_run"))
        try:
            run = reconciliation.reconcile(
                dry_run=dry_run, triggered_by=f"admin:{request.user.get_username()}"
            )
            summary = run.summary
            messages.success(
                request,
                (
                    f"{'Dry run: ' if dry_run else ''}{summary['sessions_checked']} session(s) "
                    f"checked, {summary['orders_fixed']} order(s) fixed, "
                    f"{summary['events_recovered']} event(s) recovered."
                ),
            )
        except gateway.GatewayError as exc:
            messages.error(request, f"Stripe could not be reached: {exc}")
        return redirect(reverse("commerce_reconcile"))


class SalesFilterSet(WagtailFilterSet):
    paid_at = django_filters.DateFromToRangeFilter(label="Paid", widget=DateRangePickerWidget)
    currency = django_filters.ChoiceFilter(choices=[], label="Currency")

    class Meta:
        model = Order
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        codes = Order.objects.order_by().values_list("currency", flat=True).distinct()
        self.filters["currency"].extra["choices"] = [(c, c.upper()) for c in sorted(codes)]


def revenue_by_course(orders):
    """Each order's takings and refunds split over its items in proportion to their amounts
    (a bundle's allocation, to the minor unit), then summed per course and currency, so a
    bundle's revenue lands on its courses and no order is counted twice."""
    rows = (
        OrderItem.objects.filter(order__in=orders)
        .order_by("order_id", "pk")
        .values_list(
            "order_id",
            "course__title",
            "title",
            "unit_amount",
            "order__currency",
            "order__amount_total",
            "order__amount_refunded",
        )
    )
    by_order = {}
    for order_id, *rest in rows:
        by_order.setdefault(order_id, []).append(rest)
    totals = {}
    for items in by_order.values():
        currency, paid, refunded = items[0][3], items[0][4] or 0, items[0][5] or 0
        weights = [unit for _, _, unit, *_ in items]
        for (course, title, *_), gross, back in zip(
            items, allocate(paid, weights), allocate(refunded, weights), strict=True
        ):
            row = totals.setdefault(
                (currency, course or title),
                {
                    "course": course or title,
                    "currency": currency,
                    "orders": 0,
                    "gross": 0,
                    "refunded": 0,
                },
            )
            row["orders"] += 1
            row["gross"] += gross
            row["refunded"] += back
    for row in totals.values():
        row["net"] = row["gross"] - row["refunded"]
    return sorted(totals.values(), key=lambda row: (row["currency"], -row["gross"], row["course"]))


class SalesReportView(ReportView):
    """Paid orders by course and currency, for any period; CSV and XLSX from Wagtail."""

    permission_policy = ModelPermissionPolicy(Order)
    permission_required = "view"
    page_title = "Sales"
    header_icon = "doc-full"
    results_template_name = "commerce/admin/sales_report_results.html"
    index_url_name = "commerce_sales"
    index_results_url_name = "commerce_sales_results"
    filterset_class = SalesFilterSet
    list_export = [
        "course",
        "currency",
        "orders",
        "gross_display",
        "gross",
        "refunded_display",
        "refunded",
        "net_display",
        "net",
    ]
    export_headings = {
        "course": "Course",
        "currency": "Currency",
        "orders": "Paid orders",
        "gross_display": "Gross",
        "gross": "Gross (minor units)",
        "refunded_display": "Refunded",
        "refunded": "Refunded (minor units)",
        "net_display": "Net",
        "net": "Net (minor units)",
    }

    def get_breadcrumbs_items(self):
        return [*self.breadcrumbs_items, {"url": "", "label": self.page_title}]

    def period_start(self):
        """The report's "paid from" day, or 30 days back when none is chosen."""
        valid = self.filters is not None and self.filters.is_valid()
        paid = self.filters.form.cleaned_data.get("paid_at") if valid else None
        start = getattr(paid, "start", None)
        if start is None:
            return timezone.now() - timedelta(days=30)
        if not isinstance(start, datetime):
            start = datetime.combine(start, time.min)
        return start if timezone.is_aware(start) else timezone.make_aware(start)

    def get_queryset(self):
        return Order.objects.filter(status__in=PAID)

    def filter_queryset(self, queryset):
        return revenue_by_course(super().filter_queryset(queryset))

    def decorate_paginated_queryset(self, object_list):
        return [
            {
                **row,
                "gross_display": format_money(row["gross"], row["currency"]),
                "refunded_display": format_money(row["refunded"], row["currency"]),
                "net_display": format_money(row["net"], row["currency"]),
            }
            for row in object_list
        ]

    def get_context_data(self, *args, **kwargs):
        context = super().get_context_data(*args, **kwargs)
        context.update(
            {
                "active_learners": Entitlement.objects.active().aggregate(
                    users=Count("user", distinct=True),
                    guests=Count("email", filter=Q(user__isnull=True), distinct=True),
                ),
                "refunds": [
                    {**row, "total_display": format_money(row["total"], row["currency"])}
                    for row in Refund.objects.values("currency")
                    .annotate(count=Count("pk"), total=Sum("amount"))
                    .order_by("currency")
                ],
                "disputes": Dispute.objects.values("status")
                .annotate(count=Count("pk"))
                .order_by("status"),
                "needs_review": Order.objects.filter(status=Order.Status.NEEDS_REVIEW).count(),
                "memberships": memberships.figures(self.period_start()),
            }
        )
        return context
