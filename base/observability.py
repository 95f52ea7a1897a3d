"""What leaves the process about errors and money: Sentry events scrubbed of personal data,
and log records that carry the ids of the order, membership and Stripe event they are about."""

import logging
import re

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# 13-19 digits, optionally grouped: anything that could be a card number.
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
SECRET = re.compile(r"\b(?:sk|rk|whsec|pk)_(?:live|test)?_?[A-Za-z0-9]{6,}\b")
FILTERED = "[Filtered]"
SENSITIVE_HEADERS = {"authorization", "cookie", "stripe-signature", "x-csrftoken", "x-api-key"}


def scrub_text(value):
    if not isinstance(value, str):
        return value
    return SECRET.sub(FILTERED, CARD.sub(FILTERED, EMAIL.sub(FILTERED, value)))


def _scrub(node):
    if isinstance(node, str):
        return scrub_text(node)
    if isinstance(node, list):
        return [_scrub(item) for item in node]
    if isinstance(node, dict):
        return {key: _scrub(value) for key, value in node.items()}
    return node


def scrub(event, hint=None):
    """Sentry ``before_send``: no request bodies, cookies, auth or signature headers, no user
    beyond an id, and no e-mail address, card-like number or API secret anywhere in the text."""
    request = event.get("request") or {}
    for key in ("data", "cookies", "env"):
        request.pop(key, None)
    headers = request.get("headers") or {}
    if isinstance(headers, dict):
        request["headers"] = {
            name: (FILTERED if name.lower() in SENSITIVE_HEADERS else value)
            for name, value in headers.items()
        }
    if request.get("query_string"):
        request["query_string"] = FILTERED
    user = event.get("user") or {}
    event["user"] = {"id": user["id"]} if user.get("id") else {}
    event.pop("extra", None)
    for key in ("message", "logentry", "exception", "breadcrumbs", "request", "contexts", "tags"):
        if key in event:
            event[key] = _scrub(event[key])
    return event


def init_sentry(dsn, *, environment="", release="", traces_sample_rate=0.0):
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration()],
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
        before_send=scrub,
        before_send_transaction=scrub,
        environment=environment or None,
        release=release or None,
        traces_sample_rate=traces_sample_rate,
    )


IDS = {
    "order_id": re.compile(r"\bord_[A-Za-z0-9_-]{10,36}\b"),
    "membership_id": re.compile(r"\bmem_[A-Za-z0-9_-]{10,36}\b"),
    "event_id": re.compile(r"\bevt_[A-Za-z0-9_]{6,250}\b"),
    "session_id": re.compile(r"\bcs_[A-Za-z0-9_]{6,250}\b"),
}


class MoneyIds(logging.Filter):
    """Copies the order, membership, Stripe event and session ids a log line names into fields
    of their own, so JSON logs can be searched by them."""

    def filter(self, record):
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record still gets logged
            return True
        for field, pattern in IDS.items():
            if not hasattr(record, field):
                found = pattern.search(text)
                if found:
                    setattr(record, field, found.group(0))
        return True
