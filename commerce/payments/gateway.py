"""Every call to Stripe goes through here: one client, timeouts, idempotency keys, and
Stripe's errors turned into one exception the callers can act on."""

import json
import logging
from typing import Any

import stripe
from django.conf import settings

log = logging.getLogger(__name__)

# What every call returns: Stripe's object as plain JSON (dicts, lists, strings, numbers).
StripeObject = dict[str, Any]


class GatewayError(Exception):
    """Stripe could not do what we asked. ``retryable`` says whether trying later may help."""

    def __init__(self, message, *, retryable):
        super().__init__(message)
        self.retryable = retryable


def configured():
    return bool(settings.STRIPE_SECRET_KEY)


def expected_livemode():
    key = settings.STRIPE_SECRET_KEY or ""
    return key.startswith(("sk_live_", "rk_live_"))


def client():
    if not configured():
        raise GatewayError(
            "Stripe is not configured (STRIPE_SECRET_KEY is empty).", retryable=False
        )
    base = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=base,
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=settings.STRIPE_TIMEOUT),
    )


def _plain(obj):
    """A JSON-safe dict, as Stripe sent it (the SDK turns decimal strings into Decimal)."""
    return json.loads(json.dumps(obj.to_dict(), default=str))


def _call(description, fn, *args, **kwargs):
    try:
        return _plain(fn(*args, **kwargs))
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        log.warning("stripe %s: temporary failure: %s", description, exc.user_message or exc)
        raise GatewayError(f"Stripe is unreachable ({description}).", retryable=True) from exc
    except stripe.APIError as exc:
        log.warning("stripe %s: server error: %s", description, exc)
        raise GatewayError(f"Stripe failed ({description}).", retryable=True) from exc
    except stripe.StripeError as exc:
        log.error("stripe %s: rejected: %s", description, exc.user_message or exc)
        raise GatewayError(
            f"Stripe refused the request ({description}): {exc.user_message or exc}",
            retryable=False,
        ) from exc


def create_checkout_session(params, *, idempotency_key):
    stripe_client = client()
    return _call(
        "create checkout session",
        stripe_client.v1.checkout.sessions.create,
        params=params,
        options={"idempotency_key": idempotency_key},
    )


def retrieve_checkout_session(session_id):
    return _call("retrieve checkout session", client().v1.checkout.sessions.retrieve, session_id)


def list_checkout_sessions(**params):
    return _call("list checkout sessions", client().v1.checkout.sessions.list, params=params)


def expire_checkout_session(session_id, *, idempotency_key):
    return _call(
        "expire checkout session",
        client().v1.checkout.sessions.expire,
        session_id,
        options={"idempotency_key": idempotency_key},
    )


def create_refund(params, *, idempotency_key):
    return _call(
        "create refund",
        client().v1.refunds.create,
        params=params,
        options={"idempotency_key": idempotency_key},
    )


def list_events(**params):
    return _call("list events", client().v1.events.list, params=params)


def session_for_payment_intent(payment_intent_id):
    """The Checkout Session that created a payment intent, or None."""
    result = list_checkout_sessions(payment_intent=payment_intent_id, limit=1)
    data = result.get("data") or []
    return data[0] if data else None


def create_price(params, *, idempotency_key):
    return _call(
        "create price",
        client().v1.prices.create,
        params=params,
        options={"idempotency_key": idempotency_key},
    )


def retrieve_subscription(subscription_id):
    return _call("retrieve subscription", client().v1.subscriptions.retrieve, subscription_id)


def create_billing_portal_session(params):
    return _call(
        "create billing portal session", client().v1.billing_portal.sessions.create, params=params
    )
