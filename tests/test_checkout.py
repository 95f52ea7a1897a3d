"""Checkout: a pending order with a price snapshot, then a Stripe Checkout Session."""

import pytest
from django.urls import reverse

from commerce.models import Entitlement, Order, OrderItem
from tests.helpers import make_course


def buy(client, course, email="guest@example.com"):
    return client.post(reverse("checkout", args=[course.pk]), {"email": email})


def test_guest_checkout_snapshots_the_price_and_redirects_to_stripe(client, course, emulator):
    response = buy(client, course, "  Guest@Example.com ")
    assert response.status_code == 303
    order = Order.objects.get()
    assert response["Location"] == order.stripe_session_url
    assert order.status == Order.Status.PENDING
    assert order.email == "guest@example.com"
    assert (order.amount_subtotal, order.currency) == (4900, "usd")
    item = OrderItem.objects.get(order=order)
    assert (item.course_id, item.unit_amount) == (course.pk, 4900)


def test_checkout_session_carries_the_order_and_an_idempotency_key(client, course, emulator):
    buy(client, course)
    order = Order.objects.get()
    session = emulator.sessions[order.stripe_session_id]
    assert session["client_reference_id"] == order.public_id
    assert session["metadata"] == {"order_id": order.public_id}
    assert session["customer_email"] == "guest@example.com"
    assert session["allow_promotion_codes"] is True
    assert session["mode"] == "payment"
    assert session["expires_at"] == int(order.expires_at.timestamp())
    assert session["success_url"].endswith("/checkout/success/?session_id={CHECKOUT_SESSION_ID}")
    creates = [r for r in emulator.requests if r[:2] == ("POST", "/v1/checkout/sessions")]
    assert creates == [("POST", "/v1/checkout/sessions", f"checkout-session-{order.public_id}")]


def test_a_later_price_change_does_not_touch_the_snapshot(client, course, emulator):
    buy(client, course)
    course.price_amount = 9900
    course.save_revision().publish()
    assert Order.objects.get().amount_subtotal == 4900


def test_an_invalid_email_is_refused_and_creates_nothing(client, course, emulator):
    response = buy(client, course, "not-an-address")
    assert response.status_code == 400
    assert b"valid email" in response.content
    assert not Order.objects.exists()
    assert emulator.requests == []


def test_an_unknown_course_is_404(client, db, emulator):
    assert client.post(reverse("checkout", args=[999999]), {"email": "a@b.co"}).status_code == 404


def test_checkout_only_accepts_post(client, course):
    assert client.get(reverse("checkout", args=[course.pk])).status_code == 405


def test_checkout_requires_a_csrf_token(course, emulator):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert buy(strict, course).status_code == 403
    assert not Order.objects.exists()


def test_clicking_buy_twice_reuses_the_open_session(client, course, emulator):
    first = buy(client, course)
    second = buy(client, course)
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1


def test_a_user_who_already_has_access_is_sent_to_the_course(client, course, django_user_model):
    user = django_user_model.objects.create_user("u", "u@example.com", "pw")
    Entitlement.objects.create(
        user=user, email="u@example.com", course=course, source=Entitlement.Source.ADMIN
    )
    client.force_login(user)
    response = client.post(reverse("checkout", args=[course.pk]))
    assert response.status_code == 303
    assert response["Location"] == course.first_lesson().url
    assert not Order.objects.exists()


def test_a_logged_in_buyer_checks_out_with_the_account_address(
    client, course, emulator, django_user_model
):
    user = django_user_model.objects.create_user("u", "Buyer@Example.com", "pw")
    client.force_login(user)
    assert client.post(reverse("checkout", args=[course.pk])).status_code == 303
    order = Order.objects.get()
    assert (order.user, order.email) == (user, "buyer@example.com")


def test_a_free_course_enrols_without_stripe(client, free_course, django_user_model, emulator):
    user = django_user_model.objects.create_user("u", "u@example.com", "pw")
    client.force_login(user)
    response = client.post(reverse("checkout", args=[free_course.pk]))
    assert response.status_code == 303
    entitlement = Entitlement.objects.get()
    assert (entitlement.user, entitlement.source) == (user, Entitlement.Source.ENROLMENT)
    assert emulator.requests == [] and not Order.objects.exists()


def test_a_free_course_asks_a_guest_to_log_in(client, free_course):
    response = client.post(reverse("checkout", args=[free_course.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_gateway_retried_after_a_network_error_creates_one_session(client, course, emulator):
    emulator.drop_responses = 1  # Stripe creates the session, the answer is lost
    response = buy(client, course)
    assert response.status_code == 303
    assert len(emulator.sessions) == 1
    order = Order.objects.get()
    assert order.stripe_session_id in emulator.sessions
    keys = {r[2] for r in emulator.requests if r[:2] == ("POST", "/v1/checkout/sessions")}
    assert keys == {f"checkout-session-{order.public_id}"}
    assert len([r for r in emulator.requests if r[1] == "/v1/checkout/sessions"]) == 2


def test_stripe_being_down_gives_a_clear_503_and_no_session(client, course, emulator):
    emulator.fail_requests = 10
    response = buy(client, course)
    assert response.status_code == 503
    assert b"Payments are temporarily unavailable" in response.content
    assert Order.objects.get().stripe_session_id is None


def test_the_course_page_offers_buy_to_guests_with_an_email_field(client, course):
    response = client.get(course.url)
    assert b'name="email"' in response.content
    assert b"Buy for $49.00" in response.content


def test_the_course_page_offers_continue_to_an_entitled_learner(client, course, django_user_model):
    user = django_user_model.objects.create_user("u", "u@example.com", "pw")
    Entitlement.objects.create(
        user=user, email=user.email, course=course, source=Entitlement.Source.ADMIN
    )
    client.force_login(user)
    response = client.get(course.url)
    assert b"Continue learning" in response.content
    assert b"Buy for" not in response.content


@pytest.mark.parametrize("ttl,minutes", [(5, 30), (60, 60), (99999, 1440)])
def test_order_ttl_stays_within_what_stripe_accepts(settings, ttl, minutes):
    from commerce.payments.checkout import order_ttl

    settings.ORDER_TTL_MINUTES = ttl
    assert order_ttl().total_seconds() == minutes * 60


def test_another_course_can_be_bought_at_once(client, catalog, course, emulator):
    other = make_course(catalog, slug="other", price=1500, currency="eur")
    buy(client, course)
    buy(client, other)
    assert sorted(Order.objects.values_list("currency", "amount_subtotal")) == [
        ("eur", 1500),
        ("usd", 4900),
    ]
