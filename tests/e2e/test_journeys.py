"""The three user journeys in a real browser against the running site and the emulator."""

import re

import pytest
from django.core import mail

from commerce.models import Entitlement, Order
from courses.models import CoursePage, LessonPage, ModulePage
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def site(live_server, live_stripe, catalog):
    return live_server.url, live_stripe


def test_an_editor_creates_and_publishes_a_course(page, site, catalog, django_user_model):
    base, _ = site
    django_user_model.objects.create_superuser("editor", "editor@example.com", "pw-editor-1")
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")

    def create(parent_id, model, fields, checks=()):
        page.goto(f"{base}/admin/pages/add/courses/{model}/{parent_id}/")
        page.wait_for_selector("#id_title")
        for selector, value in fields.items():
            page.fill(selector, str(value))
        slug = re.sub(r"[^a-z0-9]+", "-", fields["#id_title"].lower()).strip("-")
        page.eval_on_selector("#id_slug", "(el, slug) => { el.value = slug }", slug)
        for selector in checks:
            page.check(selector)
        page.click(".w-dropdown-button .w-dropdown__toggle")
        page.click("button[name=action-publish]")
        page.wait_for_url(re.compile(re.escape(base) + r"/admin/pages/\d+/$"))

    create(
        catalog.pk,
        "coursepage",
        {
            "#id_title": "Browser Course",
            "#id_summary": "Made in a browser.",
            "#id_price_amount": 2500,
        },
    )
    course = CoursePage.objects.get(title="Browser Course")
    assert course.live and course.price_amount == 2500
    create(course.pk, "modulepage", {"#id_title": "Browser Module"})
    module = ModulePage.objects.get(title="Browser Module")
    create(
        module.pk,
        "lessonpage",
        {"#id_title": "Open Lesson", "#id_summary": "free"},
        checks=["#id_is_free_preview"],
    )
    create(module.pk, "lessonpage", {"#id_title": "Paid Lesson", "#id_summary": "paid"})
    lessons = LessonPage.objects.child_of(module).live()
    assert [(lesson.title, lesson.is_free_preview) for lesson in lessons.order_by("path")] == [
        ("Open Lesson", True),
        ("Paid Lesson", False),
    ]
    visitor = page.context.browser.new_context().new_page()
    visitor.goto(f"{base}{course.url}")
    assert visitor.locator("text=Buy for $25.00").is_visible()
    assert visitor.locator("text=Free preview").count() == 1
    visitor.context.close()


def test_a_guest_buys_claims_the_purchase_and_studies(page, site, course):
    base, stripe_server = site
    preview = course.lessons().filter(is_free_preview=True).first()
    paid = course.lessons().filter(is_free_preview=False).first()

    # Catalog → free preview → stopped at the paid lesson.
    page.goto(f"{base}/courses/")
    page.click(f"text={course.title}")
    page.click(f"a:has-text('{preview.title}')")
    assert page.locator("text=Secret body").first.is_visible()
    page.goto(f"{base}{paid.url}")
    assert page.locator("h1", has_text=paid.title).is_visible()
    assert page.locator("text=Already bought it?").is_visible()
    assert page.locator("text=Secret body").count() == 0

    # Buy from the locked lesson, through the emulator's hosted page.
    page.fill("#id_email", "journey@example.com")
    page.click("button:has-text('Buy for')")
    page.wait_for_url(re.compile(r".*/pay/cs_.*"))
    page.click("button[value=card]")
    page.wait_for_url(re.compile(r".*/checkout/success/.*"))
    assert page.locator("h1:has-text('Payment received')").is_visible()
    assert wait_for(lambda: Order.objects.filter(status="paid").exists())

    # Claim from the e-mailed link into a new account.
    assert wait_for(lambda: any("/claim/" in m.body for m in mail.outbox))
    receipt = next(m for m in mail.outbox if "/claim/" in m.body)
    claim = re.search(r"(http://\S+/claim/\S+/)", receipt.body).group(1)
    page.goto(claim)
    page.click("main a:has-text('Sign up')")
    page.fill("input[name=email]", "journey@example.com")
    page.fill("input[name=password1]", "a-long-journey-passphrase")
    page.fill("input[name=password2]", "a-long-journey-passphrase")
    page.click("button[type=submit]")
    # The claim link proved the address: no second verification, straight back to the link.
    page.wait_for_url(re.compile(r".*/claim/.*"))
    assert not any("/accounts/confirm-email/" in m.body for m in mail.outbox)
    page.click("button:has-text('Add them to my library')")
    page.wait_for_url(f"{base}{course.first_lesson().url}")
    assert Entitlement.objects.filter(user__isnull=False).exists()

    # Study: open the paid lesson and mark it complete.
    page.goto(f"{base}{paid.url}")
    assert page.locator("text=Secret body").first.is_visible()
    page.click("button:has-text('Mark complete')")
    page.goto(f"{base}{paid.url}")
    assert page.locator("text=You completed this lesson").is_visible()


def test_a_refund_locks_the_lesson_again(page, site, course, django_user_model):
    import requests

    base, stripe_server = site
    django_user_model.objects.create_user("buyer", "buyer@example.com", "pw-buyer-123")
    from allauth.account.models import EmailAddress

    EmailAddress.objects.create(
        user=django_user_model.objects.get(username="buyer"),
        email="buyer@example.com",
        verified=True,
        primary=True,
    )
    paid = course.lessons().filter(is_free_preview=False).first()
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", "buyer@example.com")
    page.fill("input[name=password]", "pw-buyer-123")
    page.click("button[type=submit]")
    page.goto(f"{base}{course.url}")
    page.click("button:has-text('Buy for')")
    page.wait_for_url(re.compile(r".*/pay/cs_.*"))
    page.click("button[value=card]")
    page.wait_for_url(re.compile(r".*/checkout/success/.*"))
    page.click("text=Start the first lesson")
    assert wait_for(lambda: Order.objects.filter(status="paid").exists())
    assert page.goto(f"{base}{paid.url}").status == 200

    order = Order.objects.get()
    answer = requests.post(
        f"{stripe_server.url}/_control/refund",
        data={"session": order.stripe_session_id},
        timeout=30,
    )
    assert answer.status_code == 200
    assert wait_for(lambda: Order.objects.get().status == "refunded")
    response = page.goto(f"{base}{paid.url}")
    assert response.status == 403
    assert page.locator(".badge-locked").first.is_visible()
    assert page.locator("text=Secret body").count() == 0
