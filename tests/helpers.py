"""One home for what tests do again and again: deliver signed Stripe events, start and pay
checkouts, build the page tree, grant access, run calls at the same instant."""

import json
import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
import stripe
from django.db import connection
from django.test import Client, TestCase, override_settings
from django.urls import reverse

from commerce.models import Order
from courses.models import CoursePage, LessonPage, ModulePage

SECRET = "whsec_test_secret"


def sign(payload, secret=SECRET, timestamp=None):
    return stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=int(timestamp if timestamp is not None else time.time())
    )


def post_event(event, client=None, secret=SECRET, timestamp=None, header=None):
    payload = event if isinstance(event, str) else json.dumps(event)
    client = client or Client()
    return client.post(
        "/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header if header is not None else sign(payload, secret, timestamp),
    )


# --- checkout and payment ---


def start(client, course, email="guest@example.com"):
    response = client.post(reverse("checkout", args=[course.pk]), {"email": email})
    assert response.status_code == 303
    return Order.objects.get(stripe_session_url=response["Location"])


def events(emulator, order, *types):
    """The emulator's events about this order, oldest first, optionally of some types."""
    order.refresh_from_db()
    found = []
    for event in emulator.events:
        obj = event["data"]["object"]
        if obj.get("id") == order.stripe_session_id or (
            order.stripe_payment_intent_id
            and obj.get("payment_intent") == order.stripe_payment_intent_id
        ):
            found.append(event)
    return [e for e in found if not types or e["type"] in types]


def deliver(*evts):
    for event in evts:
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = post_event(event)
        assert response.status_code == 200, response.content


def get_success(client, order):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.get(reverse("checkout_success"), {"session_id": order.stripe_session_id})


def run_together(*calls):
    """Start every call at the same instant on its own thread and database connection."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def run(i, fn):
        try:
            barrier.wait(timeout=10)
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


# --- content and access ---


def publish(parent, page):
    parent.add_child(instance=page)  # validates the page
    page.save_revision(clean=False).publish()
    page.refresh_from_db()
    return page


@contextmanager
def without_index_updates():
    """Wagtail keeps its search and reference indexes in django-tasks tasks, which the default
    backend runs at once on every page save: a third of the time it takes to build a course.
    A course built only to be read, bought and studied needs neither index; a test of search or
    of document usage builds its pages outside this (or with ``make_course(indexed=True)``)."""
    dummy = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    with override_settings(TASKS=dummy):
        yield


def make_course(
    catalog, slug="python", price=4900, currency="usd", title=None, lessons=2, indexed=False
):
    with nullcontext() if indexed else without_index_updates():
        return _build_course(catalog, slug, price, currency, title, lessons)


def _build_course(catalog, slug, price, currency, title, lessons):
    course = publish(
        catalog,
        CoursePage(
            title=title or slug.title(),
            slug=slug,
            summary=f"About {slug}",
            price_amount=price,
            price_currency=currency,
        ),
    )
    module = publish(course, ModulePage(title="Module one", slug="module-one"))
    for i in range(lessons):
        publish(
            module,
            LessonPage(
                title=f"Lesson {i + 1}",
                slug=f"lesson-{i + 1}",
                summary=f"Summary {i + 1}",
                is_free_preview=(i == 0),
                body=[{"type": "text", "value": f"<p>Secret body {slug} {i + 1}</p>"}],
            ),
        )
    return course


def make_bundle(catalog, courses, price=9900, currency="usd", slug="bundle", title="Bundle"):
    """A published bundle of ``courses`` (in that order) at ``price`` minor units."""
    from courses.models import BundleCourse, BundlePage

    bundle = BundlePage(
        title=title,
        slug=slug,
        summary=f"About {slug}",
        price_amount=price,
        price_currency=currency,
        bundle_courses=[BundleCourse(course=c, sort_order=i) for i, c in enumerate(courses)],
    )
    with without_index_updates():
        return publish(catalog, bundle)


def pay(emulator, order):
    """Pay the order's session in the emulator and deliver Stripe's events to the webhook."""
    emulator.pay(order.stripe_session_id)
    deliver(*events(emulator, order))
    order.refresh_from_db()
    return order


def entitle(user, course, **fields):
    """An admin-granted entitlement: the shortest way to give a learner a course."""
    from commerce.models import Entitlement

    return Entitlement.objects.create(
        user=user, email=user.email, course=course, source=Entitlement.Source.ADMIN, **fields
    )


def log_in(page, base, user, password):
    """A browser journey's learner logs in on the site (their address verified, as allauth
    requires)."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.get_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=login]", user.email)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def wait_for(predicate, timeout=15):
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def on_postgres():
    from django.conf import settings

    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


postgres_only = pytest.mark.skipif(not on_postgres(), reason="needs PostgreSQL (DATABASE_URL)")


# --- settings in a fresh interpreter ---

ROOT = Path(__file__).resolve().parent.parent
INHERITED = {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "REDIS_URL", "SECURE_SSL_REDIRECT"}


def fresh_process(args, **env):
    """``python *args`` on the real settings, with this environment and nothing the test run
    set for itself."""
    clean = {k: v for k, v in os.environ.items() if k not in INHERITED}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env})
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def settings_in_fresh_process(expr, **env):
    return fresh_process(
        ["-c", f"import django; django.setup(); from django.conf import settings; {expr}"], **env
    )
