"""The owner refunds from the order page in a real browser; Stripe's webhook locks the lesson."""

import re

import pytest
from django.urls import reverse

from commerce.models import Order, RefundRequest
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(live_server, live_stripe, catalog):
    return live_server.url, live_stripe


def buy_as_guest(page, base, course, email):
    page.goto(f"{base}{course.url}")
    page.fill("#id_email", email)
    page.click("button:has-text('Buy for')")
    page.wait_for_url(re.compile(r".*/pay/cs_.*"))
    page.click("button[value=card]")
    page.wait_for_url(re.compile(r".*/checkout/success/.*"))
    assert wait_for(lambda: Order.objects.filter(email=email, status="paid").exists())
    return Order.objects.get(email=email)


def test_the_owner_refunds_from_the_order_page(page, site, course, django_user_model):
    base, _ = site
    order = buy_as_guest(page, base, course, "refund-me@example.com")
    django_user_model.objects.create_superuser("owner", "owner@example.com", "pw-owner-123")

    admin = page.context.browser.new_context().new_page()
    admin.goto(f"{base}/admin/login/")
    admin.fill("#id_username", "owner")
    admin.fill("#id_password", "pw-owner-123")
    admin.click("button[type=submit]")
    admin.wait_for_url(f"{base}/admin/")
    admin.goto(base + reverse("commerce_order:inspect", args=[order.pk]))
    assert admin.locator("text=$49.00").first.is_visible()
    admin.click("a:has-text('Refund…')")
    admin.check("input[name=kind][value=full]")
    admin.fill("textarea[name=reason]", "asked within 14 days")
    admin.click("button:has-text('Ask Stripe to refund')")
    admin.wait_for_url(re.compile(r".*/admin/commerce/orders/inspect/\d+/$"))
    admin.wait_for_selector("text=Refund of $49.00 requested")

    # The emulator confirms over the real webhook; the order follows, once.
    assert wait_for(lambda: Order.objects.get(pk=order.pk).status == "refunded")
    assert RefundRequest.objects.get().status == RefundRequest.Status.SENT
    admin.reload()
    assert admin.locator("text=Refunded").first.is_visible()
    assert admin.locator("a:has-text('Refund…')").count() == 0
    admin.context.close()
