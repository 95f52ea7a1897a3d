"""Accessibility in a real browser: axe-core on every public and learner page state, reflow at
375 px, where focus lands after Mark complete, and the lesson's reading order."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from commerce.models import Order, OrderItem
from tests.helpers import entitle

pytestmark = pytest.mark.django_db(transaction=True)

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
NARROW = {"width": 375, "height": 812}


# --- the world the pages are checked in -----------------------------------------------------


def log_in(page, base, user):
    """Puts a logged-in session cookie into the browser (the login form has its own check)."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    page.context.add_cookies([{"name": name, "value": client.cookies[name].value, "url": base}])


def paid_order(user, course):
    """A paid order as My courses lists it (the purchase itself is tested elsewhere)."""
    now = timezone.now()
    order = Order.objects.create(
        user=user,
        email=user.email,
        status=Order.Status.PAID,
        currency=course.price_currency,
        amount_subtotal=course.price_amount,
        amount_total=course.price_amount,
        paid_at=now,
        expires_at=now + timedelta(hours=1),
    )
    OrderItem.objects.create(
        order=order,
        course=course,
        title=course.title,
        unit_amount=course.price_amount,
        currency=course.price_currency,
    )
    return order


@pytest.fixture
def base(live_server, live_stripe):
    return live_server.url


@pytest.fixture
def student(django_user_model, course):
    """A learner who owns the course and has one paid order."""
    user = django_user_model.objects.create_user("student", "student@example.com", "pw-student-1")
    entitle(user, course)
    paid_order(user, course)
    return user


@pytest.fixture
def visitor(django_user_model):
    """A logged-in learner who owns nothing."""
    return django_user_model.objects.create_user("visitor", "visitor@example.com", "pw-visitor-1")


def lesson(course, free):
    return course.lessons().filter(is_free_preview=free).first()


# --- page states: each opens one page as a given visitor --------------------------------------


def home(page, base, request):
    page.goto(f"{base}/")


def catalog(page, base, request):
    page.goto(f"{base}/courses/")


def course_page(page, base, request):
    page.goto(base + request.getfixturevalue("course").url)


def free_preview_lesson(page, base, request):
    page.goto(base + lesson(request.getfixturevalue("course"), free=True).url)


def anonymous_paid_lesson(page, base, request):
    page.goto(base + lesson(request.getfixturevalue("course"), free=False).url)
    assert page.locator(".badge-locked").first.is_visible()  # the locked page, not a login


def locked_lesson(page, base, request):
    log_in(page, base, request.getfixturevalue("visitor"))
    response = page.goto(base + lesson(request.getfixturevalue("course"), free=False).url)
    assert response.status == 403


def lesson_with_access(page, base, request):
    log_in(page, base, request.getfixturevalue("student"))
    response = page.goto(base + lesson(request.getfixturevalue("course"), free=False).url)
    assert response.status == 200


def lesson_after_mark_complete(page, base, request):
    log_in(page, base, request.getfixturevalue("student"))
    page.goto(base + lesson(request.getfixturevalue("course"), free=True).url)
    page.click("button:has-text('Mark complete')")
    page.wait_for_selector("#messages")


def my_courses(page, base, request):
    log_in(page, base, request.getfixturevalue("student"))
    page.goto(f"{base}/my-courses/")


def receipt(page, base, request):
    student = request.getfixturevalue("student")
    log_in(page, base, student)
    page.goto(f"{base}/my-courses/orders/{Order.objects.get(user=student).public_id}/")


def find_purchases(page, base, request):
    page.goto(f"{base}/claim/find/")


def claim_link(page, base, request):
    from commerce.access import claims

    page.goto(claims.make_claim_url("guest@example.com"))


def login(page, base, request):
    page.goto(f"{base}/accounts/login/")


def signup(page, base, request):
    page.goto(f"{base}/accounts/signup/")


def checkout_cancel(page, base, request):
    page.goto(f"{base}/checkout/cancel/")


def checkout_invalid_link(page, base, request):
    page.goto(f"{base}/checkout/success/?session_id=nonsense")


def checkout_paid(page, base, request):
    log_in(page, base, request.getfixturevalue("visitor"))
    page.goto(base + request.getfixturevalue("course").url)
    page.click("button:has-text('Buy for')")
    page.wait_for_url(re.compile(r".*/pay/cs_.*"))
    page.click("button[value=card]")
    page.wait_for_url(re.compile(r".*/checkout/success/.*"))
    page.wait_for_selector("h1:has-text('Payment received')")


def guest_checkout_paid(page, base, request):
    page.goto(base + request.getfixturevalue("course").url)
    page.fill("#id_email", "guest@example.com")
    page.click("button:has-text('Buy for')")
    page.wait_for_url(re.compile(r".*/pay/cs_.*"))
    page.click("button[value=card]")
    page.wait_for_url(re.compile(r".*/checkout/success/.*"))
    page.wait_for_selector("h1:has-text('Payment received')")


PAGE_STATES = [
    home,
    catalog,
    course_page,
    free_preview_lesson,
    anonymous_paid_lesson,
    locked_lesson,
    lesson_with_access,
    lesson_after_mark_complete,
    my_courses,
    receipt,
    find_purchases,
    claim_link,
    login,
    signup,
    checkout_cancel,
    checkout_invalid_link,
    checkout_paid,
    guest_checkout_paid,
]


def serious_axe_violations(page):
    """Runs axe-core on the page as it stands; returns the serious and critical violations."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))}))"""
    )
    return [v for v in violations if v["impact"] in BLOCKING]


def describe(violations):
    return "\n".join(
        f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(v['nodes'])}" for v in violations
    )


# --- the specifications -----------------------------------------------------------------------


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed (npm ci)")
@pytest.mark.parametrize("open_state", PAGE_STATES, ids=lambda state: state.__name__)
def test_the_page_has_no_serious_or_critical_axe_violations(axe_page, base, request, open_state):
    open_state(axe_page, base, request)
    violations = serious_axe_violations(axe_page)
    assert not violations, f"{axe_page.url}\n{describe(violations)}"


def test_my_courses_with_orders_reflows_at_375_px_without_sideways_scrolling(page, base, student):
    page.set_viewport_size(NARROW)
    log_in(page, base, student)
    page.goto(f"{base}/my-courses/")
    assert page.locator("text=Orders").first.is_visible()
    scroll_width = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll_width <= NARROW["width"]


def test_after_mark_complete_focus_is_on_the_announced_message(page, base, course, student):
    first, second = course.lessons()[:2]
    log_in(page, base, student)
    page.goto(base + first.url)
    page.click("button:has-text('Mark complete')")
    page.wait_for_url(base + second.url)
    page.wait_for_function("document.activeElement.id === 'messages'")
    focused = page.evaluate(
        """() => ({role: document.activeElement.getAttribute("role"),
                   text: document.activeElement.textContent})"""
    )
    assert focused["role"] == "status"
    assert f"“{first.title}” marked complete" in focused["text"]


def test_the_lesson_comes_before_the_course_outline_in_reading_order(page, base, course, student):
    log_in(page, base, student)
    page.goto(base + lesson(course, free=False).url)
    order = page.evaluate(
        """() => {
            const lesson = document.querySelector("main h1");
            const button = document.querySelector("main form button");
            const outline = document.querySelector("nav[aria-label='Course outline']");
            const before = (a, b) =>
                Boolean(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING);
            return {heading: before(lesson, outline), button: before(button, outline)};
        }"""
    )
    assert order == {"heading": True, "button": True}


def contrast(rgb_a, rgb_b):
    def luminance(rgb):
        channels = [c / 255 for c in rgb]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted([luminance(rgb_a), luminance(rgb_b)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_focus_ring_contrasts_at_least_3_to_1_with_the_page(page, base):
    page.goto(f"{base}/courses/")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")  # the first header link
    ring = page.evaluate(
        """() => { const style = getComputedStyle(document.activeElement);
                   return {color: style.outlineColor, width: style.outlineWidth}; }"""
    )
    rgb = [int(n) for n in re.findall(r"\d+", ring["color"])[:3]]
    assert ring["width"] != "0px"
    for background in [(255, 255, 255), (0xF4, 0xF6, 0xF8)]:  # the page and the tinted boxes
        assert contrast(rgb, background) >= 3


def test_catalog_headings_go_from_h1_to_h2_without_skipping(page, base, course):
    page.goto(f"{base}/courses/")
    levels = page.evaluate(
        "[...document.querySelectorAll('main h1, main h2, main h3')].map(h => +h.tagName[1])"
    )
    assert levels[0] == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:]))


def test_a_completed_lesson_is_read_out_as_completed_in_the_outline(page, base, course, student):
    first, second = course.lessons()[:2]
    log_in(page, base, student)
    page.goto(base + first.url)
    page.click("button:has-text('Mark complete')")
    page.wait_for_url(base + second.url)
    outline = page.locator("nav[aria-label='Course outline']").aria_snapshot()
    assert f"{first.title}" in outline and "(completed)" in outline
    assert "✓" not in outline


def test_the_outline_starts_collapsed_on_a_375_px_screen_after_the_lesson(page, base, course):
    page.set_viewport_size(NARROW)
    page.goto(base + lesson(course, free=True).url)
    assert page.locator("nav[aria-label='Course outline'] details").get_attribute("open") is None
    assert page.locator("main h1").is_visible()


def test_the_outline_is_open_beside_the_lesson_on_a_wide_screen(page, base, course):
    page.goto(base + lesson(course, free=True).url)
    outline = page.locator("nav[aria-label='Course outline']")
    assert outline.locator("details").get_attribute("open") is not None
    assert outline.bounding_box()["x"] > page.locator("main h1").bounding_box()["x"]


def test_page_content_has_vertical_space_below_the_header(page, base, course):
    page.goto(base + course.url)
    assert page.evaluate("parseFloat(getComputedStyle(document.querySelector('main')).paddingTop)")
    assert page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('main')).paddingBottom)"
    )


def test_a_page_describes_itself_with_its_summary(page, base, course):
    page.goto(base + course.url)
    assert page.locator("meta[name=description]").get_attribute("content") == course.summary


def test_a_page_without_a_summary_has_a_general_description(page, base):
    page.goto(f"{base}/claim/find/")
    assert page.locator("meta[name=description]").get_attribute("content").strip()


@pytest.mark.parametrize(
    "path, words",
    [("/accounts/login/", ["Log in", "Sign up"]), ("/accounts/signup/", ["Sign up", "Log in"])],
)
def test_the_account_pages_say_log_in_and_sign_up(page, base, path, words):
    page.goto(base + path)
    heading, link = words
    assert page.locator("main h1").inner_text() == heading
    assert page.locator(f"main a:text-is('{link}')").count() == 1
    assert page.locator("main button[type=submit]").inner_text() == heading
    assert not page.locator("main").get_by_text(re.compile("sign in", re.I)).count()
