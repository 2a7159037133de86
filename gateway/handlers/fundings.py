"""Adding funds by card: the quote shown before paying, the checkout, the member's fundings.

Without Stripe configured the card routes answer 409 `funding_unavailable` (and Stripe
failing, 503 `payment_provider_unavailable`); the history still lists what came in by
other means.
"""

import uuid

from core import funding
from core.errors import FundingUnavailable
from core.funding.source import Quote
from core.money import parse_positive_amount
from gateway import keys
from gateway.api import Api, Call
from gateway.present import money, when, with_amounts
from gateway.schemas import AmountBody, AmountQuery

api = Api()


def _source(call: Call):
    source = call.request.app[keys.funding_source_key]
    if source is None:
        raise FundingUnavailable("card funding is not configured on this deployment: ask an "
                                 "admin to credit you")
    return source


def quote_json(quote: Quote) -> dict:
    return {"amount": money(quote.amount_micros), "fee_estimate": money(quote.fee_micros),
            "total": money(quote.total_micros), "minimum": money(quote.minimum_micros),
            "maximum": money(quote.maximum_micros)}


@api.route("GET", "/fundings/quote", summary="What a card top-up costs, before paying",
           scope="read", query=AmountQuery, errors=("invalid_amount", "funding_unavailable"),
           description="The card fee (`fee_estimate`) is paid on top, so that `amount` reaches "
                       "the giving balance; `minimum` and `maximum` bound a top-up.")
async def quote(call: Call):
    return quote_json(_source(call).quote(parse_positive_amount(call.query.amount)))


@api.route("POST", "/fundings", summary="Open a card payment (Stripe Checkout) to add funds",
           scope=("flattr", "account"), body=AmountBody, status=201, money=True,
           own_connections=True, chat_user_may=True,
           errors=("invalid_amount", "funding_unavailable", "payment_provider_unavailable",
                   "idempotency_conflict"),
           description="Answers the Checkout page to send the member to (`checkout_url`). "
                       "Nothing is credited until Stripe confirms the payment by its webhook. "
                       "The same Idempotency-Key answers the same session. A bot acting for "
                       "a chat user may call it: the /topup command. It needs the `flattr` or "
                       "the `account` scope: the browser extension's token (read, flattr) "
                       "may open a payment the member then makes, but never move money out.")
async def start(call: Call):
    source = _source(call)
    made = source.quote(parse_positive_amount(call.body.amount))
    key = call.request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    started = await source.start(call.request.app[keys.engine_key], call.member_id, made,
                                 idempotency_key=key)
    return {"checkout_url": started.pay_url, "session_id": started.reference,
            **quote_json(started.quote), "created_at": when(started.created_at)}


@api.route("GET", "/fundings", summary="The member's fundings, open card payments and debt",
           scope="read",
           description="`debt` is what refunds or disputes took back beyond the giving "
                       "balance: while it is above zero the member cannot flattr, and the "
                       "next funding repays it first. `card_funding` says whether a card "
                       "top-up can be opened here.")
async def history(call: Call):
    found = with_amounts(await funding.funding_history(call.conn, call.member_id))
    source = call.request.app[keys.funding_source_key]
    limits = ({"minimum": money(call.settings.funding_minimum),
               "maximum": money(call.settings.funding_maximum)} if source else None)
    return {**found, "card_funding": source is not None, "limits": limits}
