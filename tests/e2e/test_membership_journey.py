"""A learner subscribes, studies a course of the plan, cancels in Stripe's billing portal and
loses access at the end of the period — in a real browser against the emulator."""

import re
import urllib.request

import pytest

from commerce.models import Membership, MembershipPlan, PlanCourse, PlanPrice
from tests.helpers import log_in, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_subscribe_study_cancel_in_the_portal_and_lose_access_at_period_end(
    page, live_server, live_stripe, course, django_user_model
):
    base = live_server.url
    plan = MembershipPlan.objects.create(name="Pro", description="Python, all of it.")
    PlanCourse.objects.create(plan=plan, course=course)
    PlanPrice.objects.create(plan=plan, interval="month", amount=1500, currency="usd")
    user = django_user_model.objects.create_user("mia", "mia@example.com", "a-long-passphrase-2")
    paid = course.lessons().filter(is_free_preview=False).first()
    log_in(page, base, user, "a-long-passphrase-2")

    # Subscribe from the plans page through the emulator's hosted Checkout.
    page.goto(f"{base}/membership/")
    page.click("button:has-text('Subscribe')")
    page.wait_for_url(re.compile(r".*/pay/cs_.*"))
    page.click("button[value=card]")
    page.wait_for_url(re.compile(r".*/my-courses/.*"))
    assert wait_for(lambda: Membership.objects.filter(status="active").exists())

    # Study a course of the plan.
    page.goto(f"{base}{paid.url}")
    assert page.locator("text=Secret body").first.is_visible()
    page.goto(f"{base}/my-courses/")
    assert page.locator("text=with your membership").is_visible()

    # Cancel in Stripe's billing portal: access stays until the period ends.
    page.goto(f"{base}/account/billing/")
    page.click("button:has-text('Change card, switch billing, cancel or resume')")
    page.wait_for_url(re.compile(r".*/portal/bps_.*"))
    page.click("button:has-text('Cancel')")
    assert page.locator("text=cancels at period end").is_visible()
    assert wait_for(lambda: Membership.objects.get().cancel_at_period_end)
    page.click("text=Return to the site")
    page.wait_for_url(f"{base}/my-courses/")
    assert page.locator("text=Cancelled: access until").is_visible()
    page.goto(f"{base}{paid.url}")
    assert page.locator("text=Secret body").first.is_visible()

    # The period ends at Stripe: the subscription is deleted and the lesson locks.
    membership = Membership.objects.get()
    renew = f"{live_stripe.url}/_control/renew?subscription={membership.stripe_subscription_id}"
    urllib.request.urlopen(urllib.request.Request(renew, method="POST"), timeout=10).read()
    assert wait_for(lambda: Membership.objects.get().status == "canceled")
    page.goto(f"{base}{paid.url}")
    assert page.locator("text=Secret body").count() == 0
