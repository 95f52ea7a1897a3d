"""A local Stripe-compatible server for development and tests. Never used in production.

Speaks the part of Stripe's API this project calls (Checkout Sessions, Payment Intents,
Refunds, Events) over real HTTP, shapes every object after Stripe's published examples
(``stripe_fixtures.json``, copied from stripe/openapi), honours ``Idempotency-Key``, answers
errors in Stripe's format, serves a hosted checkout page, and delivers signed webhooks.

    python -m devtools.stripe_emulator --port 12111 \
        --webhook-url http://127.0.0.1:8000/webhooks/stripe/ --webhook-secret whsec_...

Control endpoints (``/_control/...``) trigger what a real account would: async payment
outcomes, refunds, disputes, pausing webhook delivery, and network faults.
"""

import argparse
import contextlib
import copy
import hashlib
import html
import json
import logging
import queue
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import stripe

from devtools.stripe_billing import BillingMixin

log = logging.getLogger("stripe_emulator")

FIXTURES = json.loads((Path(__file__).with_name("stripe_fixtures.json")).read_text())["resources"]
API_VERSION = stripe.api_version
PROMOTION_CODES = {"SAVE20": 20, "HALF": 50}


def new_id(prefix):
    return f"{prefix}_test_{secrets.token_hex(12)}"


def example(name, **fields):
    obj = copy.deepcopy(FIXTURES[name])
    obj.update(fields)
    return obj


class StripeError(Exception):
    def __init__(self, status, message, type_="invalid_request_error", code=None, param=None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message}}
        if code:
            self.body["error"]["code"] = code
        if param:
            self.body["error"]["param"] = param


def decode_form(pairs):
    """Stripe's form encoding (``a[b][0][c]=v``) back into nested dicts and lists."""
    root = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})

    def listify(node):
        if isinstance(node, dict):
            node = {k: listify(v) for k, v in node.items()}
            if node and all(k.isdigit() for k in node):
                return [node[k] for k in sorted(node, key=int)]
        return node

    return listify(root)


class Emulator(BillingMixin):
    """All state lives here, behind one lock; the HTTP handler only translates."""

    def __init__(
        self,
        *,
        base_url="",
        webhook_url=None,
        webhook_secret=None,
        synchronous_delivery=False,
        delivery_attempts=3,
    ):
        self.base_url = base_url
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.synchronous_delivery = synchronous_delivery
        self.delivery_attempts = delivery_attempts
        self.lock = threading.RLock()
        self.sessions, self.line_items, self.payment_intents = {}, {}, {}
        self.charges, self.refunds, self.disputes, self.events = {}, {}, {}, []
        self.idempotency = {}
        self.requests = []  # (method, path, idempotency key) of every API call, for tests
        self.api_ms = []  # time spent inside the emulator per API call (benchmarks subtract it)
        self.deliveries = []  # (event id, HTTP status or error)
        self.webhooks_enabled = True
        self.drop_responses = 0  # network fault: do the work, then hang up without answering
        self.fail_requests = 0  # answer 500 api_error without doing the work
        self._queue = queue.Queue()
        self._worker = None
        self._billing_init()

    # --- webhooks --------------------------------------------------------------------------

    def emit(self, type_, obj):
        event = example(
            "event",
            id=new_id("evt"),
            api_version=API_VERSION,
            created=int(time.time()),
            data={"object": copy.deepcopy(obj)},
            livemode=False,
            pending_webhooks=1,
            request={"id": new_id("req"), "idempotency_key": None},
            type=type_,
        )
        self.events.append(event)
        if self.webhooks_enabled and self.webhook_url:
            if self.synchronous_delivery:
                self.deliver(event)
            else:
                self._ensure_worker()
                self._queue.put(event)
        return event

    def _ensure_worker(self):
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._deliver_forever, daemon=True)
            self._worker.start()

    def _deliver_forever(self):
        while True:
            event = self._queue.get()
            if event is None:
                return
            for attempt in range(self.delivery_attempts):
                if self.deliver(event) == 200:
                    break
                time.sleep(0.5 * (attempt + 1))

    def signed(self, event, timestamp=None):
        payload = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(
            payload, self.webhook_secret, timestamp=timestamp
        )
        return payload, header

    def deliver(self, event):
        payload, header = self.signed(event)
        request = urllib.request.Request(
            self.webhook_url,
            data=payload.encode(),
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": header,
                "User-Agent": "Stripe/1.0 (+emulator)",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            status = f"error: {exc}"
        self.deliveries.append((event["id"], status))
        return status

    def find_event(self, event_id):
        return next((e for e in self.events if e["id"] == event_id), None)

    # --- API --------------------------------------------------------------------------------

    def create_session(self, params):
        mode = params.get("mode")
        if mode not in ("payment", "subscription"):
            raise StripeError(400, "Only mode=payment and mode=subscription are emulated.")
        items = params.get("line_items") or []
        if not items:
            raise StripeError(400, "line_items is required.", param="line_items")
        if mode == "subscription":
            items = [self._recurring_line(raw) for raw in items]
        session_id = new_id("cs")
        line_items, subtotal, currency = [], 0, None
        for raw in items:
            price = raw.get("price_data") or {}
            try:
                unit = int(price["unit_amount"])
                quantity = int(raw.get("quantity", 1))
            except (KeyError, ValueError) as exc:
                raise StripeError(
                    400, "price_data[unit_amount] must be an integer.", param="line_items"
                ) from exc
            item_currency = (price.get("currency") or "").lower()
            if not re.fullmatch(r"[a-z]{3}", item_currency):
                raise StripeError(400, "Invalid currency.", param="currency")
            if currency and item_currency != currency:
                raise StripeError(
                    400, "All line items must have the same currency.", param="line_items"
                )
            currency = item_currency
            if unit < 0 or quantity < 1:
                raise StripeError(400, "Invalid amount or quantity.", param="line_items")
            product = price.get("product_data") or {}
            line_items.append(
                example(
                    "item",
                    id=new_id("li"),
                    amount_subtotal=unit * quantity,
                    amount_total=unit * quantity,
                    amount_discount=0,
                    amount_tax=0,
                    currency=currency,
                    description=product.get("name", ""),
                    quantity=quantity,
                    price=example("item")["price"]
                    | {
                        "id": new_id("price"),
                        "currency": currency,
                        "unit_amount": unit,
                        "unit_amount_decimal": str(unit),
                        "recurring": None,
                        "type": "one_time",
                        "transform_quantity": None,
                        "product": new_id("prod"),
                    },
                    adjustable_quantity=None,
                )
            )
            subtotal += unit * quantity
        now = int(time.time())
        expires_at = int(params.get("expires_at") or now + 24 * 3600)
        if not now + 1800 - 60 <= expires_at <= now + 24 * 3600 + 60:
            raise StripeError(
                400, "expires_at must be 30 minutes to 24 hours from now.", param="expires_at"
            )
        email = params.get("customer_email")
        if params.get("customer"):
            customer = self.customers.get(params["customer"])
            if customer is None:
                raise StripeError(404, f"No such customer: '{params['customer']}'")
            email = customer["email"]
        session = example(
            "checkout.session",
            id=session_id,
            created=now,
            expires_at=expires_at,
            livemode=False,
            mode=mode,
            status="open",
            payment_status="unpaid",
            payment_intent=None,
            client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata") or {},
            customer_email=email,
            customer_details=None,
            customer=params.get("customer"),
            subscription=None,
            customer_creation="if_required",
            allow_promotion_codes=params.get("allow_promotion_codes") == "true",
            amount_subtotal=subtotal,
            amount_total=subtotal,
            currency=currency,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            discounts=[],
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            url=f"{self.base_url}/pay/{session_id}",
            shipping_cost=None,
            shipping_address_collection=None,
            shipping_options=[],
            custom_text={
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            consent=None,
            consent_collection=None,
            collected_information=None,
            after_expiration=None,
            invoice=None,
            invoice_creation={
                "enabled": False,
                "invoice_data": example("checkout.session")["invoice_creation"]["invoice_data"],
            },
            payment_method_types=["card"],
            recovered_from=None,
            client_secret=None,
        )
        session["_payment_intent_metadata"] = (params.get("payment_intent_data") or {}).get(
            "metadata"
        ) or {}
        if mode == "subscription":
            session["_price"] = items[0]["_price"]
            session["_subscription_data"] = params.get("subscription_data") or {}
            if session["_subscription_data"].get("trial_period_days"):
                session["amount_total"] = 0
        self.sessions[session_id] = session
        self.line_items[session_id] = line_items
        return session

    def _recurring_line(self, raw):
        price = self.prices.get(raw.get("price") or "")
        if price is None:
            raise StripeError(400, f"No such price: '{raw.get('price')}'", param="line_items")
        return {
            "_price": price["id"],
            "quantity": raw.get("quantity", 1),
            "price_data": {
                "currency": price["currency"],
                "unit_amount": price["unit_amount"],
                "product_data": {"name": "Membership"},
            },
        }

    def public(self, session):
        return {k: v for k, v in session.items() if not k.startswith("_")}

    def session(self, session_id):
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeError(
                404,
                f"No such checkout.session: '{session_id}'",
                code="resource_missing",
                param="id",
            )
        return session

    def expire_session(self, session_id):
        session = self.session(session_id)
        if session["status"] != "open":
            raise StripeError(
                400,
                f"Only open sessions can be expired; this one is {session['status']}.",
                code="checkout_session_not_open",
            )
        session["status"] = "expired"
        self.emit("checkout.session.expired", self.public(session))
        return session

    def pay(self, session_id, *, method="card", promotion_code=""):
        """The buyer submits the hosted page: 'card', 'async' or 'decline'."""
        session = self.session(session_id)
        if session["status"] != "open":
            raise StripeError(400, "This checkout session is no longer open.")
        if method == "decline":
            return "declined"
        if session["mode"] == "subscription":
            self.start_subscription(session)
            session["status"] = "complete"
            session["payment_status"] = "paid" if session["amount_total"] else "no_payment_required"
            session["customer_details"] = example("checkout.session")["customer_details"] | {
                "email": session["customer_email"],
                "name": "Test Buyer",
            }
            self.emit("checkout.session.completed", self.public(session))
            return "paid"
        percent = PROMOTION_CODES.get(promotion_code.strip().upper()) if promotion_code else None
        if promotion_code and (percent is None or not session["allow_promotion_codes"]):
            return "bad_code"
        if percent:
            discount = session["amount_subtotal"] * percent // 100
            session["amount_total"] = session["amount_subtotal"] - discount
            session["total_details"]["amount_discount"] = discount
            session["discounts"] = [{"coupon": None, "promotion_code": new_id("promo")}]
        email = session["customer_email"] or "buyer@example.com"
        session["customer_details"] = example("checkout.session")["customer_details"] | {
            "email": email,
            "name": "Test Buyer",
        }
        intent = example(
            "payment_intent",
            id=new_id("pi"),
            amount=session["amount_total"],
            amount_received=0,
            currency=session["currency"],
            created=int(time.time()),
            metadata=dict(session["_payment_intent_metadata"]),
            canceled_at=None,
            last_payment_error=None,
            next_action=None,
            latest_charge=None,
            status="processing" if method == "async" else "succeeded",
            payment_method_types=["card"] if method == "card" else ["us_bank_account"],
            processing=None,
            transfer_data=None,
        )
        self.payment_intents[intent["id"]] = intent
        session["payment_intent"] = intent["id"]
        session["status"] = "complete"
        if method == "async":
            session["payment_status"] = "unpaid"
            self.emit("checkout.session.completed", self.public(session))
            return "processing"
        self._charge(intent)
        session["payment_status"] = "paid"
        self.emit("checkout.session.completed", self.public(session))
        return "paid"

    def _charge(self, intent):
        charge = example(
            "charge",
            id=new_id("ch"),
            amount=intent["amount"],
            amount_captured=intent["amount"],
            amount_refunded=0,
            captured=True,
            currency=intent["currency"],
            created=int(time.time()),
            paid=True,
            payment_intent=intent["id"],
            refunded=False,
            disputed=False,
            status="succeeded",
            description=None,
            metadata=dict(intent["metadata"]),
            transfer_data=None,
            refunds={
                "object": "list",
                "data": [],
                "has_more": False,
                "url": "/v1/charges/{}/refunds",
            },
            source=None,
        )
        charge["refunds"]["url"] = f"/v1/charges/{charge['id']}/refunds"
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        intent["amount_received"] = intent["amount"]
        intent["status"] = "succeeded"
        return charge

    def settle_async(self, session_id, succeeded):
        session = self.session(session_id)
        intent = self.payment_intents.get(session.get("payment_intent") or "")
        if intent is None or intent["status"] != "processing":
            raise StripeError(400, "This session has no processing payment.")
        if succeeded:
            self._charge(intent)
            session["payment_status"] = "paid"
            return self.emit("checkout.session.async_payment_succeeded", self.public(session))
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {
            "type": "invalid_request_error",
            "code": "payment_method_unactivated",
        }
        return self.emit("checkout.session.async_payment_failed", self.public(session))

    def charge_for(self, params):
        charge_id = params.get("charge")
        if not charge_id and params.get("payment_intent"):
            intent = self.payment_intents.get(params["payment_intent"])
            if intent is None:
                raise StripeError(
                    404,
                    f"No such payment_intent: '{params['payment_intent']}'",
                    code="resource_missing",
                    param="payment_intent",
                )
            charge_id = intent.get("latest_charge")
        charge = self.charges.get(charge_id or "")
        if charge is None:
            raise StripeError(
                400, "There is no successful charge to act on.", code="charge_not_found"
            )
        return charge

    def create_refund(self, params):
        charge = self.charge_for(params)
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = int(params.get("amount") or remaining)
        if remaining <= 0:
            raise StripeError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount <= 0 or amount > remaining:
            raise StripeError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded "
                f"amount on charge ({remaining})",
                param="amount",
            )
        refund = example(
            "refund",
            id=new_id("re"),
            amount=amount,
            charge=charge["id"],
            currency=charge["currency"],
            created=int(time.time()),
            payment_intent=charge["payment_intent"],
            status="succeeded",
            metadata=params.get("metadata") or {},
            reason=params.get("reason"),
        )
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        charge["refunds"]["data"].insert(0, refund)
        self.emit("charge.refunded", charge)
        return refund

    def create_dispute(self, params):
        charge = self.charge_for(params)
        dispute = example(
            "dispute",
            id=new_id("dp"),
            amount=charge["amount"],
            charge=charge["id"],
            currency=charge["currency"],
            created=int(time.time()),
            payment_intent=charge["payment_intent"],
            status="needs_response",
            reason=params.get("reason") or "fraudulent",
            is_charge_refundable=False,
        )
        self.disputes[dispute["id"]] = dispute
        charge["disputed"] = True
        self.emit("charge.dispute.created", dispute)
        return dispute

    def close_dispute(self, dispute_id, outcome):
        dispute = self.disputes.get(dispute_id)
        if dispute is None:
            raise StripeError(404, f"No such dispute: '{dispute_id}'", code="resource_missing")
        if outcome not in ("won", "lost"):
            raise StripeError(400, "outcome must be won or lost", param="outcome")
        dispute["status"] = outcome
        self.emit("charge.dispute.closed", dispute)
        return dispute

    def list_sessions(self, params):
        sessions = sorted(self.sessions.values(), key=lambda s: s["created"], reverse=True)
        if params.get("payment_intent"):
            sessions = [s for s in sessions if s.get("payment_intent") == params["payment_intent"]]
        if params.get("status"):
            sessions = [s for s in sessions if s["status"] == params["status"]]
        created = params.get("created") or {}
        if isinstance(created, dict) and created.get("gte"):
            sessions = [s for s in sessions if s["created"] >= int(created["gte"])]
        return self._page([self.public(s) for s in sessions], params, "/v1/checkout/sessions")

    def list_events(self, params):
        events = list(reversed(self.events))
        types = params.get("types") or ([params["type"]] if params.get("type") else [])
        if types:
            events = [e for e in events if e["type"] in types]
        created = params.get("created") or {}
        if isinstance(created, dict) and created.get("gte"):
            events = [e for e in events if e["created"] >= int(created["gte"])]
        return self._page(events, params, "/v1/events")

    def _page(self, data, params, url):
        after = params.get("starting_after")
        if after:
            ids = [d["id"] for d in data]
            data = data[ids.index(after) + 1 :] if after in ids else []
        limit = min(int(params.get("limit") or 10), 100)
        return {"object": "list", "data": data[:limit], "has_more": len(data) > limit, "url": url}


class Handler(BaseHTTPRequestHandler):
    server_version = "StripeEmulator/1.0"
    emulator: Emulator = None

    def finish(self):
        with contextlib.suppress(OSError):  # the connection was cut on purpose (a fault)
            super().finish()

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.address_string(), *args)

    # --- plumbing ---------------------------------------------------------------------------

    def _params(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        query = urlsplit(self.path).query
        pairs = parse_qsl(query, keep_blank_values=True) + parse_qsl(body, keep_blank_values=True)
        return decode_form(pairs), body

    def _send(self, status, body, content_type="application/json", headers=None):
        data = (
            body
            if isinstance(body, bytes)
            else (
                json.dumps(body).encode() if content_type == "application/json" else body.encode()
            )
        )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", new_id("req"))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _redirect(self, location):
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _dispatch(self, method):
        path = urlsplit(self.path).path
        params, raw = self._params()
        emu = self.emulator
        try:
            if path.startswith("/v1/"):
                return self._api(method, path, params, raw)
            if path.startswith("/pay/"):
                return self._hosted(method, path.removeprefix("/pay/").strip("/"), params)
            if path.startswith("/portal/"):
                return self._portal(method, path.removeprefix("/portal/").strip("/"), params)
            if path == "/_control/redeliver":  # delivering waits on the site: not under the lock
                with emu.lock:
                    event = emu.find_event(params.get("event", ""))
                if event is None:
                    raise StripeError(404, "No such event.")
                return self._send(200, {"event": event["id"], "status": emu.deliver(event)})
            if path.startswith("/_control/"):
                with emu.lock:
                    return self._send(200, self._control(path, params))
            self._send(
                404,
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": f"Unrecognized request URL ({path}).",
                    }
                },
            )
        except StripeError as exc:
            self._send(exc.status, exc.body)

    def _api(self, method, path, params, raw):
        started = time.perf_counter()
        try:
            return self._api_inner(method, path, params, raw)
        finally:
            self.emulator.api_ms.append((time.perf_counter() - started) * 1000)

    def _api_inner(self, method, path, params, raw):
        emu = self.emulator
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer sk_") and not auth.startswith("Bearer rk_"):
            raise StripeError(401, "You did not provide an API key.")
        key = self.headers.get("Idempotency-Key")
        with emu.lock:
            emu.requests.append((method, path, key))
            if emu.fail_requests > 0:
                emu.fail_requests -= 1
                raise StripeError(500, "An unknown error occurred", type_="api_error")
            if method == "POST" and key:
                fingerprint = hashlib.sha256(raw.encode()).hexdigest()
                cached = emu.idempotency.get((path, key))
                if cached:
                    if cached[0] != fingerprint:
                        raise StripeError(
                            400,
                            "Keys for idempotent requests can only be used "
                            "with the same parameters they were first used "
                            "with.",
                            type_="idempotency_error",
                        )
                    return self._send(cached[1], cached[2], headers={"Idempotent-Replayed": "true"})
            try:
                status, body = 200, self._route(method, path, params)
            except StripeError as exc:
                status, body = exc.status, exc.body
            if method == "POST" and key:
                emu.idempotency[(path, key)] = (fingerprint, status, body)
            if emu.drop_responses > 0 and method == "POST":
                emu.drop_responses -= 1
                self.close_connection = True
                self.connection.shutdown(2)  # the work is done; the answer is lost
                return None
        self._send(status, body)

    def _route(self, method, path, params):
        emu = self.emulator
        parts = path.strip("/").split("/")[1:]
        if parts == ["checkout", "sessions"]:
            if method == "POST":
                return emu.public(emu.create_session(params))
            return emu.list_sessions(params)
        if parts[:2] == ["checkout", "sessions"] and len(parts) == 3 and method == "GET":
            return emu.public(emu.session(parts[2]))
        if parts[:2] == ["checkout", "sessions"] and parts[3:] == ["expire"] and method == "POST":
            return emu.public(emu.expire_session(parts[2]))
        if parts[:2] == ["checkout", "sessions"] and parts[3:] == ["line_items"]:
            emu.session(parts[2])
            return emu._page(
                emu.line_items[parts[2]], params, f"/v1/checkout/sessions/{parts[2]}/line_items"
            )
        if parts[:1] == ["payment_intents"] and len(parts) == 2 and method == "GET":
            intent = emu.payment_intents.get(parts[1])
            if intent is None:
                raise StripeError(
                    404, f"No such payment_intent: '{parts[1]}'", code="resource_missing"
                )
            return intent
        if parts[:1] == ["charges"] and len(parts) == 2 and method == "GET":
            charge = emu.charges.get(parts[1])
            if charge is None:
                raise StripeError(404, f"No such charge: '{parts[1]}'", code="resource_missing")
            return charge
        if parts == ["refunds"] and method == "POST":
            return emu.create_refund(params)
        if parts == ["prices"] and method == "POST":
            return emu.create_price(params)
        if parts[:1] == ["subscriptions"] and len(parts) == 2:
            if method == "POST":
                return emu.update_subscription(parts[1], params)
            return emu.subscription(parts[1])
        if parts == ["billing_portal", "sessions"] and method == "POST":
            return emu.create_portal_session(params)
        if parts == ["events"] and method == "GET":
            return emu.list_events(params)
        if parts[:1] == ["events"] and len(parts) == 2 and method == "GET":
            event = emu.find_event(parts[1])
            if event is None:
                raise StripeError(404, f"No such event: '{parts[1]}'", code="resource_missing")
            return event
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")

    def _control(self, path, params):
        emu = self.emulator
        action = path.removeprefix("/_control/").strip("/")
        if action == "state":
            times = sorted(emu.api_ms)
            state = {
                "sessions": len(emu.sessions),
                "events": len(emu.events),
                "deliveries": emu.deliveries[-50:],
                "webhooks_enabled": emu.webhooks_enabled,
                "api_calls": len(times),
                "api_ms_mean": round(sum(times) / len(times), 3) if times else None,
                "api_ms_p50": round(times[len(times) // 2], 3) if times else None,
            }
            if params.get("reset") == "true":
                emu.api_ms.clear()
            return state
        if action == "webhooks":
            emu.webhooks_enabled = params.get("enabled", "true") == "true"
            return {"webhooks_enabled": emu.webhooks_enabled}
        if action == "redeliver":
            event = emu.find_event(params.get("event", ""))
            if event is None:
                raise StripeError(404, "No such event.")
            return {"event": event["id"], "status": emu.deliver(event)}
        if action == "faults":
            emu.drop_responses = int(params.get("drop_responses", 0))
            emu.fail_requests = int(params.get("fail_requests", 0))
            return {"drop_responses": emu.drop_responses, "fail_requests": emu.fail_requests}
        if action == "refund":
            return emu.create_refund(self._target(params))
        if action == "dispute":
            return emu.create_dispute(self._target(params))
        if action == "close_dispute":
            return emu.close_dispute(params.get("dispute", ""), params.get("outcome", ""))
        if action == "settle_async":
            return emu.settle_async(params.get("session", ""), params.get("outcome") == "succeeded")
        if action == "expire":
            return emu.public(emu.expire_session(params.get("session", "")))
        if action == "renew":  # the subscription's period ends now
            return emu.renew(params.get("subscription", ""))
        if action == "fail_payments":  # the customer's card is declined from now on (or not)
            sub = emu.subscription(params.get("subscription", ""))
            if params.get("fail", "true") == "true":
                emu.failing_customers.add(sub["customer"])
            else:
                emu.failing_customers.discard(sub["customer"])
            return {
                "customer": sub["customer"],
                "failing": sub["customer"] in emu.failing_customers,
            }
        if action == "end_subscription":  # Stripe gives up on an unpaid subscription
            return emu.cancel_subscription(
                params.get("subscription", ""), params.get("status", "canceled")
            )
        raise StripeError(404, f"Unknown control action {action!r}.")

    def _target(self, params):
        """Refunds and disputes by session id as well as by payment intent or charge."""
        if params.get("session"):
            session = self.emulator.session(params["session"])
            params = dict(params, payment_intent=session.get("payment_intent") or "")
        return params

    # --- billing portal page ----------------------------------------------------------------

    def _portal(self, method, session_id, params):
        emu = self.emulator
        with emu.lock:
            if session_id not in emu.portal_sessions:
                raise StripeError(404, "No such billing portal session.")
            if method == "POST":
                emu.portal_action(
                    session_id, params.get("action", ""), params.get("subscription", "")
                )
            page = emu.portal_page(session_id)
        self._send(200, page, content_type="text/html; charset=utf-8")

    # --- hosted checkout page ---------------------------------------------------------------

    def _hosted(self, method, session_id, params):
        emu = self.emulator
        message = ""
        with emu.lock:
            session = emu.session(session_id)
            if method == "POST":
                action = params.get("action", "")
                if action == "cancel":
                    return self._redirect(session["cancel_url"])
                if action in ("succeed_async", "fail_async"):
                    emu.settle_async(session_id, action == "succeed_async")
                    outcome = "paid" if action == "succeed_async" else "failed"
                else:
                    outcome = emu.pay(
                        session_id,
                        method=action or "card",
                        promotion_code=params.get("promotion_code", ""),
                    )
                if outcome in ("paid", "processing", "failed"):
                    return self._redirect(
                        session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
                    )
                message = {
                    "declined": "Your card was declined. Try another card.",
                    "bad_code": "That promotion code is not valid.",
                }.get(outcome, "")
            self._send(200, self._page(session, message), content_type="text/html; charset=utf-8")

    def _page(self, session, message):
        esc = html.escape
        amount = f"{session['amount_total'] / 100:.2f} {str(session['currency']).upper()}"
        items = "".join(
            f"<li>{esc(i['description'])} — {i['amount_total'] / 100:.2f}</li>"
            for i in self.emulator.line_items.get(session["id"], [])
        )
        if session["status"] == "open":
            promo = (
                '<label>Promotion code <input name="promotion_code" autocomplete="off"></label>'
                if session["allow_promotion_codes"]
                else ""
            )
            body = f"""
<form method="post">
  <p>Card number <input value="4242 4242 4242 4242" readonly aria-label="Card number"></p>
  {promo}
  <p><button name="action" value="card" type="submit">Pay {esc(amount)}</button>
  <button name="action" value="async" type="submit">Pay by bank transfer (delayed)</button>
  <button name="action" value="decline" type="submit">Use a card that is declined</button>
  <button name="action" value="cancel" type="submit" formnovalidate>Cancel and go back</button></p>
</form>"""
        elif session["status"] == "complete" and session["payment_status"] == "unpaid":
            body = """<p>Bank transfer processing.</p><form method="post">
  <button name="action" value="succeed_async">Simulate: transfer succeeds</button>
  <button name="action" value="fail_async">Simulate: transfer fails</button></form>"""
        else:
            body = f"<p>This session is {esc(session['status'])}.</p>"
        return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Checkout (Stripe emulator)</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}
button{{margin:.25rem 0;padding:.6rem 1rem;font:inherit}}.err{{color:#a11b1b}}</style></head>
<body><p><strong>Local Stripe emulator</strong> — test mode, no real money.</p>
<h1>Pay {esc(amount)}</h1><p>{esc(session.get("customer_email") or "")}</p><ul>{items}</ul>
<p class="err" role="alert">{esc(message)}</p>{body}</body></html>"""


class EmulatorServer:
    """Run the emulator on a loopback port in a thread (tests) or forever (CLI)."""

    def __init__(self, port=0, **options):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.emulator = Emulator(base_url=self.url, **options)
        self.httpd.RequestHandlerClass = type(
            "BoundHandler", (Handler,), {"emulator": self.emulator}
        )
        self.thread = None

    def start(self):
        # A short poll: stop() waits for the loop to notice, and tests stop one per test.
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def main():
    parser = argparse.ArgumentParser(description="Local Stripe emulator (development only).")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", required=True)
    parser.add_argument("--webhook-secret", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = EmulatorServer(
        args.port, webhook_url=args.webhook_url, webhook_secret=args.webhook_secret
    )
    print(f"Stripe emulator on {server.url}, delivering to {args.webhook_url}", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
