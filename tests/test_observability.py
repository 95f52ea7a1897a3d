"""Errors and money lines leave the process without personal data; /metrics tells Prometheus
how the money path is doing, and only Prometheus."""

import json

import pytest
import sentry_sdk
from django.urls import reverse

from base.observability import FILTERED, scrub
from tests.helpers import fresh_process, settings_in_fresh_process

DEBUG_ENV = {"DEBUG": "1", "SECRET_KEY": "test-only-observability-key"}


def sentry_event():
    """The parts of an event sentry-sdk's Django integration sends for a failed request."""
    return {
        "message": "checkout failed for buyer@example.com",
        "exception": {
            "values": [
                {
                    "type": "GatewayError",
                    "value": "card 4242 4242 4242 4242 refused for ada@example.com "
                    "(sk_test_abc123xyz)",
                }
            ]
        },
        "request": {
            "url": "https://courses.example.com/checkout/12/",
            "method": "POST",
            "data": {"email": "buyer@example.com"},
            "cookies": {"sessionid": "abc"},
            "query_string": "email=buyer@example.com",
            "headers": {"Cookie": "sessionid=abc", "Stripe-Signature": "t=1,v1=x", "Host": "h"},
        },
        "user": {"id": "7", "email": "ada@example.com", "ip_address": "203.0.113.9"},
        "extra": {"email": "buyer@example.com"},
    }


def test_sentry_events_lose_bodies_cookies_secrets_and_every_email():
    event = scrub(sentry_event())
    text = json.dumps(event)
    assert "@example.com" not in text and "4242 4242" not in text and "sk_test_abc" not in text
    assert "data" not in event["request"] and "cookies" not in event["request"]
    assert event["request"]["headers"]["Cookie"] == FILTERED
    assert event["request"]["headers"]["Stripe-Signature"] == FILTERED
    assert event["request"]["headers"]["Host"] == "h"
    assert event["user"] == {"id": "7"} and "extra" not in event
    assert event["request"]["url"] == "https://courses.example.com/checkout/12/"


def test_a_captured_error_reaches_sentry_scrubbed():
    sent = []

    class Capture(sentry_sdk.transport.Transport):
        def capture_envelope(self, envelope):
            sent.extend(item.payload.json for item in envelope.items if item.payload.json)

    from base.observability import scrub as before_send

    sentry_sdk.init(dsn="http://public@127.0.0.1:9/1", transport=Capture, before_send=before_send)
    try:
        try:
            raise ValueError("refund for ord_abcdefghijkl to ada@example.com failed")
        except ValueError as exc:
            sentry_sdk.capture_exception(exc)
        sentry_sdk.flush()
    finally:
        sentry_sdk.get_global_scope().set_client(None)
    [event] = sent
    text = json.dumps(event)
    assert "ord_abcdefghijkl" in text and "ada@example.com" not in text


def test_sentry_is_on_only_with_a_dsn_and_always_scrubs():
    on = settings_in_fresh_process(
        "import sentry_sdk; c = sentry_sdk.get_client(); "
        "print(c.is_active(), c.options['before_send'].__name__, c.options['send_default_pii'])",
        SENTRY_DSN="http://public@127.0.0.1:9/1",
        **DEBUG_ENV,
    )
    assert on.stdout.split() == ["True", "scrub", "False"], on.stderr
    off = settings_in_fresh_process(
        "import sentry_sdk; print(sentry_sdk.get_client().is_active())", **DEBUG_ENV
    )
    assert off.stdout.strip() == "False", off.stderr


def test_json_logs_carry_the_order_and_event_ids_of_a_money_line():
    result = fresh_process(
        [
            "-c",
            "import django, logging; django.setup(); logging.getLogger("
            "'commerce.payments.fulfilment').info('order %s paid -> paid via webhook %s: ok', "
            "'ord_abcdefghijkl', 'evt_test_123456')",
        ],
        LOG_FORMAT="json",
        **DEBUG_ENV,
    )
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["order_id"] == "ord_abcdefghijkl" and line["event_id"] == "evt_test_123456"
    assert line["level"] == "INFO" and line["logger"] == "commerce.payments.fulfilment"
    assert line["message"].startswith("order ord_abcdefghijkl paid")


# --- /metrics ------------------------------------------------------------------------------


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = "metrics-secret-token"
    return settings.METRICS_TOKEN


def test_metrics_are_off_without_a_token(client, db):
    assert client.get(reverse("metrics")).status_code == 404


@pytest.mark.parametrize("header", ["", "Bearer wrong", "metrics-secret-token", "Basic abc"])
def test_metrics_need_the_bearer_token(client, db, token, header):
    response = client.get(reverse("metrics"), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and b"coursesite_" not in response.content


def test_metrics_report_the_ledger_the_queue_and_reconciliation(client, sold, token):
    response = client.get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    text = response.content.decode()
    assert (
        'coursesite_stripe_events{status="processed",type="checkout.session.completed"} 1.0' in text
    )
    assert "coursesite_ledger_backlog 0.0" in text and "coursesite_ledger_dead 0.0" in text
    assert "coursesite_task_queue_depth" in text
    assert "coursesite_reconciliation_age_seconds -1.0" in text
    assert "@example.com" not in text


def test_metrics_refuse_other_methods(client, db, token):
    response = client.post(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
