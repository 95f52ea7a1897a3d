"""What a shop owner reads in the admin: amounts as money, results as figures, pages by name."""

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from commerce.models import DownloadEvent, Order, ReconciliationRun, StripeEvent
from commerce.payments import reconciliation
from courses.models import LessonResource
from tests.helpers import start


def text(response):
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.mark.parametrize(
    "url,title",
    [
        ("/admin/reports/sales/", "Sales"),
        ("/admin/commerce/reconcile/", "Reconcile with Stripe"),
        ("/admin/commerce/grant/", "Grant access"),
    ],
)
def test_commerce_screens_are_titled_by_name(superuser_client, url, title):
    content = text(superuser_client.get(url))
    assert f"<title>{title}" in content
    assert "<title>Home" not in content


def test_the_order_page_shows_money_not_minor_units(superuser_client, sold):
    content = text(superuser_client.get(f"/admin/commerce/orders/inspect/{sold.pk}/"))
    assert "$49.00" in content
    assert "4900" not in content.replace(sold.public_id, "")


def test_the_order_timeline_writes_amounts_as_money(sold):
    created = sold.events.order_by("created_at", "pk").first()
    assert created.message.endswith("at $49.00")


def test_the_orders_list_names_the_course(superuser_client, sold):
    content = text(superuser_client.get("/admin/commerce/orders/"))
    assert sold.items.get().title in content


def test_an_abandoned_checkout_is_told_apart_from_an_open_one(superuser_client, course, emulator):
    walked_away, paying = start(Client(), course), start(Client(), course, "two@example.com")
    Order.objects.filter(pk=walked_away.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    walked_away.refresh_from_db()
    assert walked_away.outcome.startswith("Abandoned")
    assert paying.outcome == "Checkout open"
    abandoned = text(superuser_client.get("/admin/commerce/orders/?outcome=abandoned"))
    assert walked_away.public_id in abandoned and paying.public_id not in abandoned
    open_ = text(superuser_client.get("/admin/commerce/orders/?outcome=open"))
    assert paying.public_id in open_ and walked_away.public_id not in open_


def test_orders_filter_by_course(superuser_client, sold, catalog):
    from tests.helpers import make_course

    other = make_course(catalog, slug="other-course")
    assert sold.public_id in text(
        superuser_client.get(f"/admin/commerce/orders/?course={sold.items.get().course_id}")
    )
    assert sold.public_id not in text(
        superuser_client.get(f"/admin/commerce/orders/?course={other.pk}")
    )


def test_the_orders_export_has_money_beside_minor_units(superuser_client, sold):
    rows = list(
        csv.DictReader(
            io.StringIO(text(superuser_client.get("/admin/commerce/orders/?export=csv")))
        )
    )
    [row] = rows
    assert row["Paid"] == "$49.00" and row["Paid (minor units)"] == "4900"
    assert row["Courses"] == sold.items.get().title


def test_the_sales_report_writes_refunds_as_money(superuser_client, sold):
    sold.refunds.create(stripe_refund_id="re_1", amount=1000, currency="usd", status="succeeded")
    content = text(superuser_client.get("/admin/reports/sales/"))
    assert "$10.00" in content and "minor units" not in content


def test_reconciliation_results_are_labelled_figures(superuser_client, course, emulator):
    reconciliation.reconcile()
    run = ReconciliationRun.objects.get()
    listing = text(superuser_client.get("/admin/commerce/reconciliation-runs/"))
    inspect = text(superuser_client.get(f"/admin/commerce/reconciliation-runs/inspect/{run.pk}/"))
    for content in (listing, inspect):
        assert "Checkout sessions checked" in content
        assert "{&#x27;" not in content and "{'" not in content


def test_a_stripe_event_payload_is_indented_json_only(superuser_client, sold):
    row = StripeEvent.objects.first()
    content = text(superuser_client.get(f"/admin/commerce/stripe-events/inspect/{row.pk}/"))
    assert '"type": "checkout.session.completed"' in content.replace("&quot;", '"')
    assert "{&#x27;" not in content


def test_the_downloads_list_names_the_file_and_lesson(
    superuser_client, course, paid_lesson, learner
):
    resource = LessonResource.objects.create(
        lesson=paid_lesson, title="Slides for week one", file="lesson-resources/x/s.pdf"
    )
    DownloadEvent.objects.create(
        user=learner,
        resource=resource,
        file_name=resource.file.name,
        lesson=paid_lesson,
        course=course,
    )
    content = text(superuser_client.get("/admin/commerce/downloads/"))
    assert "Slides for week one" in content and paid_lesson.title in content
    assert "lesson-resources/x/s.pdf" not in content


def test_the_sales_report_does_not_count_expired_grants_as_active(
    superuser_client, course, learner
):
    from tests.helpers import entitle

    entitle(learner, course, expires_at=timezone.now() - timedelta(days=1))
    content = text(superuser_client.get("/admin/reports/sales/"))
    assert "0 account(s)" in content


def test_one_rule_decides_what_is_active(course, learner):
    from commerce.models import Entitlement
    from tests.helpers import entitle

    entitle(learner, course, expires_at=timezone.now() - timedelta(days=1))
    assert not Entitlement.objects.active().exists()
    Entitlement.objects.update(expires_at=timezone.now() + timedelta(days=1))
    assert Entitlement.objects.active().count() == 1


def test_the_sales_report_exports_money_beside_minor_units(superuser_client, sold):
    body = text(superuser_client.get("/admin/reports/sales/?export=csv"))
    [row] = list(csv.DictReader(io.StringIO(body)))
    assert row["Course"] == sold.items.get().title and row["Paid orders"] == "1"
    assert (row["Gross"], row["Gross (minor units)"], row["Net"]) == ("$49.00", "4900", "$49.00")


def test_the_sales_report_filters_by_the_day_paid(superuser_client, sold):
    today = timezone.localdate()
    kept = text(superuser_client.get(f"/admin/reports/sales/?paid_at_from={today}"))
    assert "$49.00" in kept
    later = today + timedelta(days=1)
    gone = text(superuser_client.get(f"/admin/reports/sales/?paid_at_from={later}"))
    assert "No sales in this period" in gone
