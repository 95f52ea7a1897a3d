"""Stripe Billing for the local emulator: prices, customers, subscriptions, invoices, Checkout
in subscription mode and the billing portal, with their events. Mixed into ``Emulator``; every
object is shaped after Stripe's published example (``stripe_fixtures.json``)."""

import html
import time

PERIOD = {"month": 30 * 24 * 3600, "year": 365 * 24 * 3600}


class BillingMixin:
    """State and behaviour of subscriptions; the HTTP handler routes to these methods."""

    def _billing_init(self):
        self.prices, self.customers, self.subscriptions = {}, {}, {}
        self.invoices, self.portal_sessions = {}, {}
        self.failing_customers = set()  # "the card will be declined at the next renewal"

    # --- prices and customers --------------------------------------------------------------

    def create_price(self, params):
        from devtools.stripe_emulator import StripeError, example, new_id

        recurring = params.get("recurring") or {}
        if recurring.get("interval") not in PERIOD:
            raise StripeError(400, "recurring[interval] must be month or year.", param="recurring")
        try:
            amount = int(params["unit_amount"])
        except (KeyError, ValueError) as exc:
            raise StripeError(400, "unit_amount must be an integer.", param="unit_amount") from exc
        price = example(
            "price",
            id=new_id("price"),
            currency=(params.get("currency") or "").lower(),
            unit_amount=amount,
            unit_amount_decimal=str(amount),
            recurring=example("price")["recurring"]
            | {"interval": recurring["interval"], "interval_count": 1, "trial_period_days": None},
            type="recurring",
            product=new_id("prod"),
            metadata=params.get("metadata") or {},
            created=int(time.time()),
            livemode=False,
        )
        self.prices[price["id"]] = price
        return price

    def _customer(self, email):
        from devtools.stripe_emulator import example, new_id

        customer = example(
            "customer", id=new_id("cus"), email=email, created=int(time.time()), livemode=False
        )
        self.customers[customer["id"]] = customer
        return customer

    # --- subscriptions ---------------------------------------------------------------------

    def subscription(self, subscription_id):
        from devtools.stripe_emulator import StripeError

        sub = self.subscriptions.get(subscription_id)
        if sub is None:
            raise StripeError(
                404, f"No such subscription: '{subscription_id}'", code="resource_missing"
            )
        return sub

    def start_subscription(self, session):
        """The buyer paid a subscription-mode Checkout Session."""
        from devtools.stripe_emulator import example, new_id

        customer_id = session.get("customer") or self._customer(session["customer_email"])["id"]
        price = self.prices[session["_price"]]
        trial_days = int(session["_subscription_data"].get("trial_period_days") or 0)
        now = int(time.time())
        end = now + (
            trial_days * 24 * 3600 if trial_days else PERIOD[price["recurring"]["interval"]]
        )
        sub_id = new_id("sub")
        item = example(
            "subscription_item",
            id=new_id("si"),
            created=now,
            price=price,
            quantity=1,
            subscription=sub_id,
            current_period_start=now,
            current_period_end=end,
            metadata={},
        )
        item.pop("plan", None)
        sub = example(
            "subscription",
            id=sub_id,
            customer=customer_id,
            created=now,
            start_date=now,
            billing_cycle_anchor=end,
            currency=price["currency"],
            status="trialing" if trial_days else "active",
            trial_start=now if trial_days else None,
            trial_end=end if trial_days else None,
            cancel_at_period_end=False,
            cancel_at=None,
            canceled_at=None,
            ended_at=None,
            livemode=False,
            metadata=dict(session["_subscription_data"].get("metadata") or {}),
            items={
                "object": "list",
                "data": [item],
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            latest_invoice=None,
            schedule=None,
            test_clock=None,
        )
        self.subscriptions[sub_id] = sub
        session["customer"] = customer_id
        session["subscription"] = sub_id
        self.emit("customer.subscription.created", sub)
        invoice = self._invoice(sub, amount=0 if trial_days else price["unit_amount"], paid=True)
        self.emit("invoice.paid", invoice)
        return sub

    def _invoice(self, sub, *, amount, paid):
        from devtools.stripe_emulator import example, new_id

        item = sub["items"]["data"][0]
        invoice_id = new_id("in")
        line = example("invoice")["lines"]["data"][0] | {
            "id": new_id("il"),
            "amount": amount,
            "currency": sub["currency"],
            "invoice": invoice_id,
            "period": {
                "start": item["current_period_start"],
                "end": item["current_period_end"],
            },
            "subscription": sub["id"],
        }
        invoice = example(
            "invoice",
            id=invoice_id,
            customer=sub["customer"],
            currency=sub["currency"],
            amount_due=amount,
            amount_paid=amount if paid else 0,
            amount_remaining=0 if paid else amount,
            attempted=True,
            attempt_count=1,
            status="paid" if paid else "open",
            billing_reason="subscription_cycle",
            created=int(time.time()),
            livemode=False,
            lines={"object": "list", "data": [line], "has_more": False, "url": "/v1/lines"},
            parent={
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": sub["metadata"], "subscription": sub["id"]},
            },
            subscription=None,
            period_start=item["current_period_start"],
            period_end=item["current_period_end"],
            subtotal=amount,
            total=amount,
            metadata={},
            test_clock=None,
        )
        self.invoices[invoice_id] = invoice
        sub["latest_invoice"] = invoice_id
        return invoice

    def update_subscription(self, subscription_id, params):
        """What the billing portal and the API may change: cancel at period end, or undo it."""
        sub = self.subscription(subscription_id)
        if "cancel_at_period_end" in params and sub["status"] not in ("canceled",):
            cancel = str(params["cancel_at_period_end"]).lower() == "true"
            sub["cancel_at_period_end"] = cancel
            item = sub["items"]["data"][0]
            sub["cancel_at"] = item["current_period_end"] if cancel else None
            sub["canceled_at"] = int(time.time()) if cancel else None
            self.emit("customer.subscription.updated", sub)
        return sub

    def cancel_subscription(self, subscription_id, status="canceled"):
        sub = self.subscription(subscription_id)
        if sub["status"] == "canceled":
            return sub
        now = int(time.time())
        sub["status"] = status
        if status == "canceled":
            sub["ended_at"] = now
            sub["canceled_at"] = sub["canceled_at"] or now
            self.emit("customer.subscription.deleted", sub)
        else:
            self.emit("customer.subscription.updated", sub)
        return sub

    def renew(self, subscription_id):
        """The period ends: Stripe bills the next one, or ends a cancelled subscription."""
        sub = self.subscription(subscription_id)
        if sub["status"] == "canceled":
            return sub
        if sub["cancel_at_period_end"]:
            return self.cancel_subscription(subscription_id)
        item = sub["items"]["data"][0]
        amount = item["price"]["unit_amount"]
        if sub["customer"] in self.failing_customers:
            sub["status"] = "past_due"
            invoice = self._invoice(sub, amount=amount, paid=False)
            self.emit("invoice.payment_failed", invoice)
            self.emit("customer.subscription.updated", sub)
            return sub
        start = item["current_period_end"]
        item["current_period_start"] = start
        item["current_period_end"] = start + PERIOD[item["price"]["recurring"]["interval"]]
        sub["status"] = "active"
        invoice = self._invoice(sub, amount=amount, paid=True)
        self.emit("invoice.paid", invoice)
        self.emit("customer.subscription.updated", sub)
        return sub

    # --- billing portal --------------------------------------------------------------------

    def create_portal_session(self, params):
        from devtools.stripe_emulator import StripeError, example, new_id

        customer = params.get("customer") or ""
        if customer not in self.customers:
            raise StripeError(404, f"No such customer: '{customer}'", code="resource_missing")
        session_id = new_id("bps")
        session = example(
            "billing_portal.session",
            id=session_id,
            customer=customer,
            created=int(time.time()),
            livemode=False,
            flow=None,
            return_url=params.get("return_url"),
            url=f"{self.base_url}/portal/{session_id}",
        )
        self.portal_sessions[session_id] = session
        return session

    def portal_action(self, session_id, action, subscription_id):
        session = self.portal_sessions[session_id]
        sub = self.subscription(subscription_id)
        if sub["customer"] != session["customer"]:
            return
        if action == "cancel":
            self.update_subscription(subscription_id, {"cancel_at_period_end": "true"})
        elif action == "resume":
            self.update_subscription(subscription_id, {"cancel_at_period_end": "false"})
        elif action == "cancel_now":
            self.cancel_subscription(subscription_id)
        elif action == "fail_next":
            self.failing_customers.add(sub["customer"])
        elif action == "fix_card":
            self.failing_customers.discard(sub["customer"])
            if sub["status"] == "past_due":
                self.renew(subscription_id)

    def portal_page(self, session_id):
        esc = html.escape
        session = self.portal_sessions[session_id]
        rows = []
        for sub in self.subscriptions.values():
            if sub["customer"] != session["customer"]:
                continue
            item = sub["items"]["data"][0]
            price = item["price"]
            state = sub["status"] + (
                " (cancels at period end)" if sub["cancel_at_period_end"] else ""
            )
            buttons = "".join(
                f'<button name="action" value="{value}">{label}</button> '
                for value, label in (
                    ("resume", "Resume") if sub["cancel_at_period_end"] else ("cancel", "Cancel"),
                    ("cancel_now", "Cancel now"),
                    ("fail_next", "Fail the next payment"),
                    ("fix_card", "Update card"),
                )
            )
            rows.append(
                f"<li><strong>{esc(sub['id'])}</strong> — {price['unit_amount'] / 100:.2f} "
                f"{esc(price['currency'].upper())}/{esc(price['recurring']['interval'])}: "
                f"<span class=state>{esc(state)}</span>"
                f'<form method="post"><input type="hidden" name="subscription" '
                f'value="{esc(sub["id"])}">{buttons}</form></li>'
            )
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<title>Billing portal (local Stripe emulator)</title></head><body>"
            "<h1>Billing portal</h1><p>Local Stripe emulator: nothing here is real.</p>"
            f"<ul>{''.join(rows) or '<li>No subscription.</li>'}</ul>"
            f'<p><a href="{esc(session["return_url"] or "/")}">Return to the site</a></p>'
            "</body></html>"
        )
