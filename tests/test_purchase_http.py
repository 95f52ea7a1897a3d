"""End to end over real HTTP: the site, the emulator's hosted page, signed webhooks back."""

import re

import pytest
import requests

from commerce.models import Entitlement, Order, StripeEvent
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def buy_through_hosted_page(browser, live_server, course, email=None, action="card"):
    page = browser.get(f"{live_server.url}{course.url}")
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    data = {"csrfmiddlewaretoken": token}
    if email:
        data["email"] = email
    to_stripe = browser.post(
        f"{live_server.url}/checkout/{course.pk}/",
        data=data,
        headers={"Referer": page.url},
        allow_redirects=False,
    )
    assert to_stripe.status_code == 303
    hosted = browser.get(to_stripe.headers["Location"])
    assert "Local Stripe emulator" in hosted.text
    return browser.post(to_stripe.headers["Location"], data={"action": action})


def test_a_guest_buys_a_course_and_the_webhook_grants_it(live_server, live_stripe, course):
    browser = requests.Session()
    result = buy_through_hosted_page(browser, live_server, course, email="guest@example.com")
    assert result.status_code == 200 and "/checkout/success/" in result.url
    assert "Payment received" in result.text
    assert wait_for(lambda: StripeEvent.objects.filter(status="processed").exists())
    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert Entitlement.objects.get().email == "guest@example.com"
    # The ledger commits before the emulator reads the answer and records the delivery.
    assert wait_for(lambda: live_stripe.emulator.deliveries)
    assert live_stripe.emulator.deliveries[0][1] == 200


def test_a_logged_in_user_buys_and_opens_a_paid_lesson(
    live_server, live_stripe, course, client, django_user_model
):
    user = django_user_model.objects.create_user("u", "learner@example.com", "pw")
    client.force_login(user)
    browser = requests.Session()
    browser.cookies.set("sessionid", client.cookies["sessionid"].value)
    paid_lesson = course.lessons().filter(is_free_preview=False).first()
    assert browser.get(f"{live_server.url}{paid_lesson.url}").status_code == 403

    result = buy_through_hosted_page(browser, live_server, course)
    assert "Start the first lesson" in result.text
    assert wait_for(lambda: StripeEvent.objects.filter(status="processed").exists())
    lesson = browser.get(f"{live_server.url}{paid_lesson.url}")
    assert lesson.status_code == 200
    assert "Secret body" in lesson.text
    assert "no-store" in lesson.headers["Cache-Control"]
    assert Entitlement.objects.get().user == user


def test_a_declined_card_stays_on_the_hosted_page_and_grants_nothing(
    live_server, live_stripe, course
):
    browser = requests.Session()
    result = buy_through_hosted_page(browser, live_server, course, "d@example.com", "decline")
    assert "declined" in result.text
    assert Order.objects.get().status == Order.Status.PENDING
    assert not Entitlement.objects.exists()
