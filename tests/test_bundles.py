"""Bundles: several courses at one price, each course its own item and its own grant, with
every guarantee of a single purchase (exactly once, refunds, disputes, reconciliation)."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from commerce.models import Entitlement, Order
from commerce.payments import reconciliation
from courses.models import BundleCourse, BundlePage
from tests.helpers import (
    deliver,
    entitle,
    events,
    get_success,
    make_bundle,
    make_course,
    pay,
    post_event,
    postgres_only,
    run_together,
    start,
)


@pytest.fixture
def courses(catalog):
    return [
        make_course(catalog, slug="python", price=4900),
        make_course(catalog, slug="django", price=2900),
        make_course(catalog, slug="sql", price=1900),
    ]


@pytest.fixture
def bundle(catalog, courses):
    return make_bundle(catalog, courses, price=9900, title="Web developer")


def active(course=None):
    rows = Entitlement.objects.active()
    return rows.filter(course=course) if course else rows


# --- the page --------------------------------------------------------------------------------


def test_the_bundle_page_lists_its_courses_their_total_and_the_saving(client, bundle):
    page = client.get(bundle.url).content.decode()
    assert "Python" in page and "Django" in page and "Sql" in page
    assert "$97.00" in page and "You save $-2.00" not in page
    assert "$99.00" in page


def test_the_saving_is_shown_when_the_bundle_costs_less(client, catalog, courses):
    cheap = make_bundle(catalog, courses, price=6900, slug="cheap")
    page = client.get(cheap.url).content.decode()
    assert "$97.00" in page and "You save $28.00" in page


def test_the_catalog_lists_bundles(client, bundle, catalog):
    page = client.get(catalog.url).content.decode()
    assert "Bundles" in page and bundle.url in page


def test_a_logged_in_buyer_is_told_which_courses_they_already_have(client, bundle, courses):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("has", "has@example.com", "pw")
    entitle(user, courses[0])
    client.force_login(user)
    page = client.get(bundle.url).content.decode()
    assert "You already have Python" in page and "Buy for $99.00" in page


def test_the_bundle_page_costs_the_same_queries_for_two_courses_and_eight(
    client, catalog, courses, django_user_model
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    user = django_user_model.objects.create_user("q", "q@example.com", "pw")
    entitle(user, courses[0])
    client.force_login(user)
    more = [make_course(catalog, slug=f"more{i}", price=900) for i in range(6)]
    small = make_bundle(catalog, courses[:2], slug="small")
    large = make_bundle(catalog, courses[:2] + more, slug="large")

    def queries(url):
        client.get(url)  # warm the site's caches
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    assert queries(small.url) == queries(large.url)


def bundle_form(courses, **fields):
    from wagtail.test.utils.form_data import inline_formset, nested_form_data, streamfield

    return nested_form_data(
        {
            "title": "Pack",
            "slug": "pack",
            "summary": "Two courses.",
            "price_amount": 5000,
            "price_currency": "usd",
            "description": streamfield([]),
            "bundle_courses": inline_formset(
                [{"course": c.pk, "ORDER": i} for i, c in enumerate(courses)]
            ),
            "action-publish": "publish",
            **fields,
        }
    )


def add_bundle_url(catalog):
    return reverse("wagtailadmin_pages:add", args=["courses", "bundlepage", catalog.pk])


def test_an_editor_publishes_a_bundle_in_the_admin(superuser_client, catalog, courses):
    response = superuser_client.post(add_bundle_url(catalog), bundle_form(courses[1::-1]))
    assert response.status_code == 302
    bundle = BundlePage.objects.get(slug="pack")
    assert bundle.live and bundle.courses() == [courses[1], courses[0]]


def test_the_admin_refuses_a_bundle_that_mixes_currencies(superuser_client, catalog, courses):
    euro = make_course(catalog, slug="euro", price=1000, currency="eur")
    response = superuser_client.post(add_bundle_url(catalog), bundle_form([courses[0], euro]))
    assert response.status_code == 200
    assert b"Priced in another currency than the bundle&#x27;s: Euro." in response.content
    assert not BundlePage.objects.exists()


def test_the_admin_refuses_a_course_twice_in_a_bundle(superuser_client, catalog, courses):
    response = superuser_client.post(add_bundle_url(catalog), bundle_form([courses[0]] * 2))
    assert response.status_code == 200 and b"Please correct the duplicate" in response.content
    assert not BundlePage.objects.exists()


def test_the_admin_refuses_a_free_bundle(superuser_client, catalog, courses):
    response = superuser_client.post(
        add_bundle_url(catalog), bundle_form(courses[:2], price_amount=0)
    )
    assert response.status_code == 200 and b"A bundle has a price" in response.content
    assert not BundlePage.objects.exists()


def test_a_bundle_must_be_priced_in_its_courses_currency(catalog, courses):
    euro = make_course(catalog, slug="euro", price=1000, currency="eur")
    with pytest.raises(ValidationError, match="another currency"):
        make_bundle(catalog, [courses[0], euro], slug="mixed")


def test_a_course_cannot_appear_twice_in_a_bundle(catalog, courses):
    with pytest.raises(ValidationError, match="twice"):
        make_bundle(catalog, [courses[0], courses[0]], slug="twice")


# --- checkout ------------------------------------------------------------------------------


def test_a_bundle_order_holds_one_item_per_course_at_its_share_of_the_price(
    bundle, courses, emulator
):
    order = start(Client(), bundle)
    items = list(order.items.order_by("pk"))
    assert [i.course_id for i in items] == [c.pk for c in courses]
    assert [i.unit_amount for i in items] == [5001, 2960, 1939]
    assert order.amount_subtotal == 9900 == sum(i.unit_amount for i in items)
    assert order.bundle_id == bundle.pk and order.bundle_title == "Web developer"
    stripe_items = emulator.line_items[order.stripe_session_id]
    assert [i["amount_total"] for i in stripe_items] == [5001, 2960, 1939]
    assert stripe_items[0]["description"] == "Python (Web developer)"


def test_an_awkward_bundle_price_splits_to_the_cent(catalog, emulator):
    three = [make_course(catalog, slug=f"c{i}", price=4900) for i in range(3)]
    bundle = make_bundle(catalog, three, price=1000, slug="awkward")
    order = start(Client(), bundle)
    assert sorted(order.items.values_list("unit_amount", flat=True)) == [333, 333, 334]


def test_a_zero_decimal_bundle_splits_in_whole_yen(catalog, emulator):
    yen = [make_course(catalog, slug=f"y{i}", price=3000, currency="jpy") for i in range(3)]
    bundle = make_bundle(catalog, yen, price=10000, currency="jpy", slug="yen")
    order = start(Client(), bundle)
    assert list(order.items.order_by("pk").values_list("unit_amount", flat=True)) == [
        3334,
        3333,
        3333,
    ]
    assert order.currency == "jpy" and order.amount_subtotal == 10000


def test_an_unpublished_course_in_a_bundle_is_not_sold(bundle, courses, emulator):
    courses[2].unpublish()
    order = start(Client(), bundle)
    assert set(order.items.values_list("course_id", flat=True)) == {courses[0].pk, courses[1].pk}
    assert order.amount_subtotal == 9900
    pay(emulator, order)
    assert not active(courses[2]).exists()


def test_a_bundle_with_no_course_on_sale_opens_no_checkout(bundle, courses, emulator):
    for course in courses:
        course.unpublish()
    response = Client().post(reverse("checkout", args=[bundle.pk]), {"email": "a@example.com"})
    assert response.status_code == 409 and not Order.objects.exists()
    assert emulator.requests == []


def test_a_buyer_who_has_every_course_is_not_charged(client, bundle, courses, emulator):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("all", "all@example.com", "pw")
    for course in courses:
        entitle(user, course)
    client.force_login(user)
    response = client.post(reverse("checkout", args=[bundle.pk]))
    assert response.status_code == 303 and response["Location"] == bundle.url
    assert not Order.objects.exists() and emulator.requests == []


def test_clicking_buy_twice_reuses_the_open_bundle_order(client, bundle, emulator):
    first = start(client, bundle)
    assert start(client, bundle) == first
    assert Order.objects.count() == 1


def test_a_course_order_is_not_reused_for_the_bundle_or_back(client, bundle, courses, emulator):
    single = start(client, courses[0])
    both = start(client, bundle)
    assert single != both and start(client, courses[0]) == single


# --- payment and its consequences ----------------------------------------------------------


def test_paying_for_a_bundle_grants_every_course_once(bundle, courses, emulator):
    order = pay(emulator, start(Client(), bundle))
    assert order.status == Order.Status.PAID
    for course in courses:
        grant = active(course).get()
        assert grant.email == "guest@example.com" and grant.order_item.order == order
    deliver(*events(emulator, order))  # Stripe retries every event
    assert active().count() == 3


def test_paying_grants_only_the_courses_the_buyer_lacks(client, bundle, courses, emulator):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("some", "some@example.com", "pw")
    entitle(user, courses[0])
    client.force_login(user)
    order = pay(emulator, start(client, bundle))
    assert order.status == Order.Status.PAID and order.already_owned_at is None
    assert active().filter(user=user).count() == 3
    assert not Entitlement.objects.filter(order_item__order=order, course=courses[0]).exists()


def test_a_full_refund_revokes_every_course_of_the_bundle(bundle, courses, emulator):
    order = pay(emulator, start(Client(), bundle))
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id})
    deliver(*events(emulator, order, "charge.refunded"))
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and not active().exists()
    assert Entitlement.objects.filter(status="revoked").count() == 3


def test_a_partial_refund_keeps_every_course_by_default(bundle, emulator):
    order = pay(emulator, start(Client(), bundle))
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id, "amount": 2000})
    deliver(*events(emulator, order, "charge.refunded"))
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_REFUNDED and active().count() == 3


def test_a_partial_refund_revokes_every_course_when_the_policy_says_so(bundle, emulator, settings):
    settings.PARTIAL_REFUND_REVOKES = True
    order = pay(emulator, start(Client(), bundle))
    emulator.create_refund({"payment_intent": order.stripe_payment_intent_id, "amount": 2000})
    deliver(*events(emulator, order, "charge.refunded"))
    assert not active().exists()


def test_a_dispute_suspends_every_course_and_a_win_restores_them(bundle, emulator):
    order = pay(emulator, start(Client(), bundle))
    dispute = emulator.create_dispute({"payment_intent": order.stripe_payment_intent_id})
    deliver(*events(emulator, order, "charge.dispute.created"))
    assert Entitlement.objects.filter(status="suspended").count() == 3
    emulator.close_dispute(dispute["id"], "won")
    deliver(*events(emulator, order, "charge.dispute.closed"))
    assert active().count() == 3


def test_a_refund_arriving_before_the_completion_leaves_the_bundle_revoked(bundle, emulator):
    order = start(Client(), bundle)
    emulator.pay(order.stripe_session_id)
    order.refresh_from_db()
    intent = emulator.sessions[order.stripe_session_id]["payment_intent"]
    emulator.create_refund({"payment_intent": intent})
    refunded = [e for e in emulator.events if e["type"] == "charge.refunded"]
    completed = [e for e in emulator.events if e["type"] == "checkout.session.completed"]
    deliver(*refunded, *completed)
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED and not active().exists()


def test_removing_a_course_from_the_bundle_changes_nothing_for_past_buyers(
    bundle, courses, emulator
):
    order = pay(emulator, start(Client(), bundle))
    BundleCourse.objects.filter(page=bundle, course=courses[2]).delete()
    bundle.save_revision().publish()
    assert order.items.count() == 3 and active().count() == 3
    assert start(Client(), bundle, email="next@example.com").items.count() == 2


def test_reconciliation_recovers_a_bundle_whose_webhook_never_arrived(bundle, emulator):
    order = start(Client(), bundle)
    emulator.pay(order.stripe_session_id)  # no event reaches the webhook
    reconciliation.reconcile()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID and active().count() == 3


def test_the_sales_report_gives_each_course_its_share_of_bundle_revenue(
    superuser_client, bundle, courses, emulator
):
    pay(emulator, start(Client(), bundle))
    pay(emulator, start(Client(), courses[0], email="single@example.com"))
    from commerce.backoffice.admin_views import revenue_by_course

    rows = {r["course"]: r for r in revenue_by_course(Order.objects.filter(status="paid"))}
    assert rows["Python"]["gross"] == 5001 + 4900 and rows["Python"]["orders"] == 2
    assert rows["Django"]["gross"] == 2960 and rows["Sql"]["gross"] == 1939
    assert sum(r["gross"] for r in rows.values()) == 9900 + 4900
    page = superuser_client.get(reverse("commerce_sales")).content.decode()
    assert "$99.01" in page  # Python: $50.01 + $49.00


def test_the_admin_order_page_shows_the_bundle_and_each_share(superuser_client, bundle, emulator):
    order = pay(emulator, start(Client(), bundle))
    page = superuser_client.get(reverse("commerce_order:inspect", args=[order.pk])).content
    assert b"Web developer" in page and b"$50.01" in page and b"$29.60" in page


def test_the_orders_export_lists_each_item_at_its_share(superuser_client, bundle, emulator):
    pay(emulator, start(Client(), bundle))
    export = superuser_client.get(reverse("commerce_order:index") + "?export=csv")
    text = b"".join(export.streaming_content).decode()
    assert "Web developer" in text and "Python $50.01; Django $29.60; Sql $19.39" in text


# --- races on PostgreSQL -------------------------------------------------------------------


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_same_bundle_event_delivered_at_once_grants_each_course_once(bundle, courses, emulator):
    order = start(Client(), bundle)
    emulator.pay(order.stripe_session_id)
    [completed] = events(emulator, order, "checkout.session.completed")
    responses = run_together(*[lambda: post_event(completed)] * 6)
    assert sorted(r.json()["status"] for r in responses) == ["duplicate"] * 5 + ["processed"]
    assert active().count() == 3
    for course in courses:
        assert active(course).count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_success_page_racing_the_webhook_grants_each_course_once(bundle, emulator):
    client = Client()
    order = start(client, bundle)
    emulator.pay(order.stripe_session_id)
    [completed] = events(emulator, order, "checkout.session.completed")
    web, hook = run_together(lambda: get_success(client, order), lambda: post_event(completed))
    assert (web.status_code, hook.status_code) == (200, 200)
    assert active().count() == 3
    assert Order.objects.get().status == Order.Status.PAID


# --- attacks -------------------------------------------------------------------------------


def test_a_draft_bundle_cannot_be_bought(bundle, emulator):
    bundle.unpublish()
    response = Client().post(reverse("checkout", args=[bundle.pk]), {"email": "a@example.com"})
    assert response.status_code == 404 and not Order.objects.exists()


def test_a_page_that_is_neither_course_nor_bundle_cannot_be_bought(catalog, emulator):
    response = Client().post(reverse("checkout", args=[catalog.pk]), {"email": "a@example.com"})
    assert response.status_code == 404 and not Order.objects.exists()


def test_buying_a_bundle_without_csrf_is_refused(bundle, emulator):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("checkout", args=[bundle.pk]), {"email": "a@example.com"})
    assert response.status_code == 403 and not Order.objects.exists()
