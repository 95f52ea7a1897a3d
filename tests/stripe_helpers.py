"""Deliver Stripe events to the webhook the way Stripe does: raw JSON, signed header."""

import json
import time

import stripe
from django.test import Client

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
