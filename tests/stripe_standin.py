"""Stripe for the tests: its events, signed as Stripe signs them, and a stand-in of its API.

The stand-in serves `POST /v1/checkout/sessions` on loopback as Stripe does (form-encoded
parameters, `Idempotency-Key` replays the first answer) and remembers what it was asked,
so that the official client can be pointed at it (FLATTR_STRIPE_API_BASE).
"""

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from aiohttp import web

from core.funding.stripe import seal
from loopback import LoopbackServer

WEBHOOK_SECRET = "whsec_test_secret"
SECRET_KEY = "sk_test_standin"
_ids = itertools.count(1)


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """The Stripe-Signature header of a payload: HMAC-SHA256 of "<time>.<payload>"."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def event(kind: str, thing: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or f"evt_{next(_ids)}", "object": "event", "type": kind,
            "created": int(time.time()), "livemode": False, "api_version": "2026-01-01",
            "data": {"object": thing}}


def session_paid(session_id: str, payment_intent: str, amount_total_cents: int, *,
                 member_id: int | None = None, amount_micros: int | None = None,
                 kind: str = "checkout.session.completed", paid: bool = True,
                 currency: str = "eur", seal_secret: str = WEBHOOK_SECRET) -> dict[str, Any]:
    """A paid session; with a member, the metadata this deployment gives its sessions
    (sealed with `seal_secret`: another deployment's secret makes another's session)."""
    metadata = {}
    if member_id is not None:
        metadata = {"flattr_member_id": str(member_id),
                    "flattr_amount_micros": str(amount_micros),
                    "flattr_seal": seal(seal_secret, member_id, amount_micros or 0)}
    return event(kind, {"id": session_id, "object": "checkout.session", "mode": "payment",
                        "payment_status": "paid" if paid else "unpaid",
                        "amount_total": amount_total_cents, "currency": currency,
                        "payment_intent": payment_intent, "metadata": metadata})


def session_expired(session_id: str) -> dict[str, Any]:
    return event("checkout.session.expired", {"id": session_id, "object": "checkout.session",
                                              "mode": "payment", "payment_status": "unpaid"})


def charge_refunded(payment_intent: str, amount_refunded_cents: int,
                    currency: str = "eur") -> dict[str, Any]:
    return event("charge.refunded", {
        "id": f"ch_{payment_intent}", "object": "charge", "payment_intent": payment_intent,
        "amount_refunded": amount_refunded_cents, "currency": currency, "refunded": True})


def dispute_created(payment_intent: str, amount_cents: int, dispute_id: str) -> dict[str, Any]:
    return dispute_event("charge.dispute.created", payment_intent, amount_cents, dispute_id,
                         "needs_response")


def dispute_closed(payment_intent: str, amount_cents: int, dispute_id: str,
                   status: str) -> dict[str, Any]:
    """The dispute ended: `won` (its funds reinstated), `lost`, `warning_closed`."""
    return dispute_event("charge.dispute.closed", payment_intent, amount_cents, dispute_id,
                         status)


def dispute_event(kind: str, payment_intent: str, amount_cents: int, dispute_id: str,
                  status: str) -> dict[str, Any]:
    return event(kind, {
        "id": dispute_id, "object": "dispute", "payment_intent": payment_intent,
        "charge": f"ch_{payment_intent}", "amount": amount_cents, "currency": "eur",
        "status": status})


def payload(made: dict[str, Any]) -> bytes:
    return json.dumps(made).encode()


class StripeStandIn(LoopbackServer):
    """A loopback stand-in of the Checkout Sessions API; `fail` makes it answer 500. Serve
    `app()` yourself and set `base`, or `start()` it on 127.0.0.1 (then `close()`)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.replies: dict[str, dict] = {}
        self.fail = False
        self.base = ""  # what FLATTR_STRIPE_API_BASE names

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/checkout/sessions", self.create_session)
        return app

    async def start(self) -> "StripeStandIn":
        await self.serve(self.app())
        self.base = self.root
        return self

    async def create_session(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
            return web.json_response({"error": {"type": "invalid_request_error",
                                                "message": "Invalid API Key"}}, status=401)
        if self.fail:
            return web.json_response({"error": {"type": "api_error", "message": "down"}},
                                     status=500)
        form = dict(await request.post())
        key = request.headers.get("Idempotency-Key", "")
        if key in self.replies:
            return web.json_response(self.replies[key])
        self.requests.append({**form, "Idempotency-Key": key})
        total = sum(int(form[f"line_items[{i}][price_data][unit_amount]"])
                    * int(form[f"line_items[{i}][quantity]"])
                    for i in range(10) if f"line_items[{i}][quantity]" in form)
        number = next(_ids)
        session = {"id": f"cs_test_{number}", "object": "checkout.session",
                   "url": f"https://checkout.stripe.test/pay/cs_test_{number}",
                   "amount_total": total, "currency": form["line_items[0][price_data][currency]"],
                   "mode": form["mode"], "payment_status": "unpaid", "status": "open",
                   "metadata": {k[len("metadata["):-1]: v for k, v in form.items()
                                if k.startswith("metadata[")}}
        if key:
            self.replies[key] = session
        return web.json_response(session)
