"""Buying a bundle, and giving a course that its recipient claims, in a real browser."""

import re

import pytest
from django.core import mail

from commerce.models import Entitlement, Order
from tests.helpers import log_in, make_bundle, make_course, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(live_server, live_stripe, catalog):
    return live_server.url, live_stripe


def pay_on_the_hosted_page(page):
    page.wait_for_url(re.compile(r".*/pay/cs_.*"))
    page.click("button[value=card]")
    page.wait_for_url(re.compile(r".*/checkout/success/.*"))


def test_a_logged_in_learner_buys_a_bundle_and_opens_every_course(
    page, site, catalog, course, django_user_model
):
    base, _ = site
    other = make_course(catalog, slug="django", price=2900)
    bundle = make_bundle(catalog, [course, other], price=5900, title="Two for one")
    ada = django_user_model.objects.create_user("ada", "ada@example.com", "a-long-passphrase-1")
    log_in(page, base, ada, "a-long-passphrase-1")

    page.goto(f"{base}/courses/")
    page.click("text=Two for one")
    assert page.locator("text=You save $19.00").is_visible()
    page.click("button:has-text('Buy for $59.00')")
    pay_on_the_hosted_page(page)
    assert page.locator("h1:has-text('Payment received')").is_visible()
    assert page.locator("main li", has_text="Django").is_visible()
    assert wait_for(
        lambda: Entitlement.objects.active().filter(user__email="ada@example.com").count() == 2
    )
    order = Order.objects.get()
    assert order.bundle_id == bundle.pk and order.amount_total == 5900

    page.goto(f"{base}/my-courses/")
    assert page.locator("main", has_text="Python").is_visible()
    assert page.locator("main", has_text="Django").is_visible()
    page.goto(f"{base}{other.lessons().last().url}")
    assert page.locator("text=Secret body django").first.is_visible()


def test_a_guest_gives_a_course_and_the_recipient_claims_it(page, site, course):
    base, _ = site
    page.goto(f"{base}{course.url}")
    page.click("summary:has-text('Buy as a gift')")
    page.fill("#gift_recipient_email", "lucky@example.com")
    page.fill("#gift_recipient_name", "Lucky")
    page.fill("#gift_gift_message", "For your new job. — Grace")
    page.fill("#gift_email", "grace@example.com")
    page.click("button:has-text('Buy as a gift')")
    pay_on_the_hosted_page(page)
    assert page.locator("text=It is a gift for lucky@example.com").is_visible()

    # The recipient's e-mail, with the message and the claim link.
    assert wait_for(lambda: any(m.to == ["lucky@example.com"] for m in mail.outbox))
    gift_mail = next(m for m in mail.outbox if m.to == ["lucky@example.com"])
    assert "For your new job. — Grace" in gift_mail.body
    claim = re.search(r"(http://\S+/claim/\S+/)", gift_mail.body).group(1)

    recipient = page.context.browser.new_context().new_page()
    recipient.goto(claim)
    recipient.click("main a:has-text('Sign up')")
    recipient.fill("input[name=email]", "lucky@example.com")
    recipient.fill("input[name=password1]", "a-lucky-long-passphrase")
    recipient.fill("input[name=password2]", "a-lucky-long-passphrase")
    recipient.click("button[type=submit]")
    recipient.wait_for_url(re.compile(r".*/claim/.*"))
    recipient.click("button:has-text('Add them to my library')")
    recipient.wait_for_url(f"{base}{course.first_lesson().url}")
    recipient.goto(f"{base}{course.lessons().last().url}")
    assert recipient.locator("text=Secret body").first.is_visible()
    grant = Entitlement.objects.get()
    assert grant.user.email == "lucky@example.com" and grant.email == "lucky@example.com"
    recipient.context.close()

    # The buyer bought nothing for themselves.
    assert not Entitlement.objects.filter(email="grace@example.com").exists()
