"""Top-ups by card through Stripe Checkout: a session per top-up, credited by its webhook.

`start` opens a Checkout session for the amount plus the card fee (shown before paying) and
records it; nothing is credited until Stripe's signed `checkout.session.completed` event
says the session is paid (core/funding/stripe_events.py). The Stripe API is reached
through the official client, at `FLATTR_STRIPE_API_BASE`.

The session's metadata names the member and the amount, sealed with this deployment's
webhook secret (`seal`): should the record of a session be missing when its payment comes,
only a session this deployment opened is credited from its metadata, never one another
deployment on the same Stripe account opened, nor metadata made up.
"""

import hashlib
import hmac
import logging

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from core import ledger
from core.clock import utc_now
from core.dialect import insert_ignoring_conflicts
from core.errors import (
    FundingUnavailable,
    IdempotencyConflict,
    PaymentProviderUnavailable,
    check,
)
from core.funding.source import Quote, Started, quote_top_up
from core.money import CENT_MICROS
from core.schema import stripe_checkouts
from core.settings import Settings

log = logging.getLogger(__name__)

NAME = "stripe"
# Stripe counts these currencies in other units than cents; micro-units map to cents only.
NOT_IN_CENTS = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF",
                          "UGX", "VND", "VUV", "XAF", "XOF", "XPF", "BHD", "JOD", "KWD", "OMR",
                          "TND", "ISK", "HUF", "TWD"})


def seal(webhook_secret: str, member_id: int, amount_micros: int) -> str:
    """This deployment's mark on a session's metadata: only who holds the endpoint's secret
    (one a deployment) can make it for this member and amount."""
    message = f"flattr-checkout:{member_id}:{amount_micros}".encode()
    return hmac.new(webhook_secret.encode(), message, hashlib.sha256).hexdigest()


def sealed(webhook_secret: str | None, member_id: int, amount_micros: int, mark: str) -> bool:
    return bool(webhook_secret) and hmac.compare_digest(
        mark.encode(), seal(webhook_secret or "", member_id, amount_micros).encode())


def cents(micros: int) -> int:
    check(micros % CENT_MICROS == 0, f"{micros} micros is not a whole number of cents")
    return micros // CENT_MICROS


class StripeSource:
    """The Stripe funding source of one deployment (see core/funding/source.py)."""

    name = NAME

    def __init__(self, settings: Settings, http_client: stripe.HTTPClient) -> None:
        if not settings.stripe_configured:
            raise FundingUnavailable("card funding is not configured on this deployment")
        if settings.currency in NOT_IN_CENTS:
            raise FundingUnavailable(f"card funding in {settings.currency} is not supported")
        self.settings = settings
        self.client = stripe.StripeClient(
            settings.stripe_secret_key or "",
            base_addresses={"api": settings.stripe_api_base},
            http_client=http_client,
            max_network_retries=2,
        )

    def quote(self, amount_micros: int) -> Quote:
        s = self.settings
        return quote_top_up(amount_micros, minimum_micros=s.funding_minimum,
                            maximum_micros=s.funding_maximum, fee_bps=s.stripe_fee_bps,
                            fixed_fee_micros=s.stripe_fee_fixed, currency=s.currency)

    async def start(self, engine: AsyncEngine, member_id: int, quote: Quote, *,
                    idempotency_key: str) -> Started:
        """Open the Checkout session (no database connection is held meanwhile) and record
        it. The same key again gets the same session from Stripe."""
        try:
            session = await self.client.v1.checkout.sessions.create_async(
                self._session_params(member_id, quote),
                {"idempotency_key": f"flattr:{member_id}:{ledger.key_part(idempotency_key)}"},
            )
        except stripe.IdempotencyError as error:
            raise IdempotencyConflict("this Idempotency-Key was used for another top-up"
                                      ) from error
        except stripe.StripeError as error:
            log.warning("Stripe refused a checkout session: %s", error)
            raise PaymentProviderUnavailable("the card payment could not be opened: try "
                                             "again later") from error
        check(session.amount_total == cents(quote.total_micros),
              "Stripe's session is not for the amount asked")
        now = utc_now()
        async with engine.begin() as conn:
            await conn.execute(
                insert_ignoring_conflicts(conn, stripe_checkouts, ["session_id"]).values(
                    session_id=session.id, member_id=member_id,
                    amount_micros=quote.amount_micros, fee_micros=quote.fee_micros,
                    status="open", created_at=now,
                )
            )
        return Started(quote, session.id, session.url or "", now)

    def _session_params(self, member_id: int, quote: Quote) -> dict:
        currency = self.settings.currency.lower()
        public = self.settings.public_url

        def item(name: str, micros: int) -> dict:
            return {"quantity": 1, "price_data": {
                "currency": currency, "unit_amount": cents(micros),
                "product_data": {"name": name}}}

        items = [item("Flattr funds", quote.amount_micros)]
        if quote.fee_micros:
            items.append(item("Card processing fee", quote.fee_micros))
        metadata = {"flattr_member_id": str(member_id),
                    "flattr_amount_micros": str(quote.amount_micros),
                    "flattr_seal": seal(self.settings.stripe_webhook_secret or "", member_id,
                                        quote.amount_micros)}
        return {
            "mode": "payment",
            "line_items": items,
            "client_reference_id": str(member_id),
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": f"{public}/dashboard?funding=paid&session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{public}/dashboard?funding=cancelled",
        }
