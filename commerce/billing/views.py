"""Membership pages: the plans, subscribing through Stripe Checkout, and Stripe's billing
portal. Thin: the rules live in commerce.billing.memberships."""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from commerce.billing import memberships
from commerce.models import Membership, MembershipPlan, PlanPrice
from commerce.payments import gateway

log = logging.getLogger(__name__)


def see_other(url):
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def plans(request):
    """Every plan on sale, with its prices and what it opens."""
    offered = (
        MembershipPlan.objects.filter(active=True)
        .prefetch_related("prices", "plan_courses__course")
        .order_by("name")
    )
    held = set()
    if request.user.is_authenticated:
        held = set(
            Membership.objects.filter(user=request.user, status__in=Membership.LIVE).values_list(
                "plan_id", flat=True
            )
        )
    return render(request, "commerce/membership/plans.html", {"plans": offered, "held": held})


def _refuse(request, message, status):
    return render(request, "commerce/membership/refused.html", {"message": message}, status=status)


@require_POST
def checkout(request, plan_id):
    if not request.user.is_authenticated:
        return redirect_to_login(request.build_absolute_uri("/membership/"), "/accounts/login/")
    plan = MembershipPlan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise Http404("No such plan.")
    interval = request.POST.get("interval", "")
    if interval not in PlanPrice.Interval.values:
        return _refuse(request, "Choose monthly or yearly billing.", 400)
    try:
        membership = memberships.start_checkout(plan, interval, request.user)
    except memberships.NotForSale as exc:
        return _refuse(request, str(exc), 409 if not plan.active else 400)
    except memberships.AlreadyMember:
        messages.info(request, f"You are already a member of {plan.name}; manage it here.")
        return see_other("/account/billing/")
    except gateway.GatewayError as exc:
        log.error("membership checkout for plan %s failed: %s", plan.pk, exc)
        return _refuse(request, "Payments are temporarily unavailable. Nothing was charged.", 503)
    return see_other(membership.stripe_session_url)


@never_cache
@login_required
def billing(request):
    """GET: the learner's memberships; POST: off to Stripe's billing portal."""
    held = list(
        Membership.objects.filter(user=request.user)
        .exclude(status__in=[Membership.Status.CHECKOUT, Membership.Status.ABANDONED])
        .select_related("plan")
        .order_by("-created_at")
    )
    if request.method == "POST":
        try:
            url = memberships.portal_url(request.user)
        except gateway.GatewayError as exc:
            log.error("billing portal for user %s failed: %s", request.user.pk, exc)
            return _refuse(request, "Billing is temporarily unavailable. Try again soon.", 503)
        if url:
            return see_other(url)
        messages.info(request, "You have no membership to manage.")
    return render(request, "commerce/membership/billing.html", {"memberships": held})
