"""POST /webhooks/stripe: Stripe's signed events, verified by the stripe library, applied once.

The signature covers the raw body, which is read (capped, in time) before anything else;
a bad, missing, stale (over 5 minutes) or non-ASCII signature is a 400 and changes nothing.
A second delivery of an event is answered 200 and changes nothing
(core/funding/stripe_events.py).
"""

from typing import Any

import stripe
from aiohttp import web

from core.funding.stripe_events import receive_event
from gateway import keys
from gateway.api import read_body
from gateway.errors import ApiError
from gateway.json import dumps, loads

MAX_EVENT_BYTES = 512 * 1024
SIGNATURE_TOLERANCE_SECONDS = 300


async def stripe_webhook(request: web.Request) -> web.Response:
    settings = request.app[keys.settings_key]
    if not settings.stripe_configured:
        raise ApiError("funding_unavailable", "card funding is not configured on this deployment")
    raw = await read_body(request, MAX_EVENT_BYTES)
    header = request.headers.get("Stripe-Signature", "")
    if not header.isascii():  # the library would hand it to hmac.compare_digest: TypeError
        raise ApiError("invalid_signature", "the Stripe-Signature header is not ASCII, so it "
                       "cannot be a signature")
    try:
        stripe.WebhookSignature.verify_header(raw, header, settings.stripe_webhook_secret,
                                              SIGNATURE_TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        raise ApiError("invalid_signature", "the Stripe-Signature header does not sign this "
                       "body with this endpoint's secret, or is over 5 minutes old") from None
    event = _event(raw)
    async with request.app[keys.engine_key].begin() as conn:
        received = await receive_event(conn, event, settings)
    return web.Response(body=dumps({"received": True, "event": received.event_id,
                                    "state": received.state, "note": received.note,
                                    "replayed": received.replayed}),
                        content_type="application/json")


def _event(raw: bytes) -> dict[str, Any]:
    """A signed body is Stripe's; still, its shape is checked before it is acted on."""
    try:
        event = loads(raw)
    except ValueError:
        event = None
    if not (isinstance(event, dict) and isinstance(event.get("id"), str)
            and isinstance(event.get("type"), str) and 0 < len(event["id"]) <= 255
            and isinstance(event.get("data"), dict)
            and isinstance(event["data"].get("object"), dict)
            and isinstance(event["data"]["object"].get("id", ""), str)):
        raise ApiError("invalid_event", "the body is not a Stripe event")
    return event
