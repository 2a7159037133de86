"""Money in and out on the web: a card top-up quoted before paying, the fundings and any debt,
and the bank account payouts go to.

The quote comes from the same funding source as `GET /api/v1/fundings/quote`; the page that
shows it carries the form that opens the Checkout session (gateway/pages/dashboard.py), whose
answer sends the browser on to the payment provider's page, which that page's
Content-Security-Policy must allow a form to lead to.
"""

import secrets

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from core import funding
from core.errors import FundingUnavailable, InvalidAmount, PaymentProviderUnavailable
from core.funding.source import FundingSource
from core.members import Member
from core.money import CENT_MICROS, MICROS_PER_UNIT, format_amount, parse_positive_amount
from core.payout_accounts import payout_account
from gateway import keys
from gateway.pages.visits import (
    SECURITY_HEADERS,
    Visit,
    form_key,
    page,
    render,
    see_other,
    status_of,
)

MAX_FUNDINGS_SHOWN = 10
SUGGESTED_TOP_UP = 10 * MICROS_PER_UNIT
SOURCE_NAMES = {"stripe": "card", "manual": "credited"}
# The provider's payment page is on its own https origin (checkout.stripe.com).
PAY_PAGE_POLICY = SECURITY_HEADERS["Content-Security-Policy"].replace(
    "form-action 'self'", "form-action 'self' https:")
NO_CARD_FUNDING = "card funding is not available on this deployment"


def card_source(visit: Visit) -> FundingSource:
    source = visit.app[keys.funding_source_key]
    if source is None:
        raise FundingUnavailable(NO_CARD_FUNDING)
    return source


def masked_iban(iban: str) -> str:
    """An IBAN as the page shows it back: its country and check digits and its last four."""
    return f"{iban[:4]} •••• {iban[-4:]}"


def repay_amount(micros: int, visit: Visit) -> str:
    """What the top-up form suggests (what the member owes, or SUGGESTED_TOP_UP): in whole
    cents, within the top-up limits."""
    settings = visit.settings
    cents = -(-micros // CENT_MICROS) * CENT_MICROS
    return format_amount(min(max(cents, settings.funding_minimum), settings.funding_maximum))


async def money_context(conn: AsyncConnection, visit: Visit, member: Member) -> dict:
    """The dashboard's money in and out: card funding (or not), fundings, debt, bank account."""
    history = await funding.funding_history(conn, member.id)
    debt = history["debt_micros"]
    card = visit.app[keys.funding_source_key] is not None
    settings = visit.settings
    return {
        "card_funding": card,
        "funding_limits": (format_amount(settings.funding_minimum),
                           format_amount(settings.funding_maximum)),
        "top_up_suggested": repay_amount(debt or SUGGESTED_TOP_UP, visit),
        "debt_micros": debt,
        "fundings": [{**f, "source": SOURCE_NAMES.get(f["source"], f["source"])}
                     for f in history["fundings"][:MAX_FUNDINGS_SHOWN]],
        "open_checkouts": history["open_checkouts"][:MAX_FUNDINGS_SHOWN],
        "bank_account": await payout_account(conn, member.id),
        "masked_iban": masked_iban,
    }


async def card_page(visit: Visit, *, amount: str = "", error: str | None = None,
                    status: int = 200) -> web.StreamResponse:
    """The quote of a card top-up of `amount`, with the form that pays it; or, without an
    amount or with a wrong one, the form that asks for it (what is wrong beside it)."""
    member = visit.signed_in()
    source = card_source(visit)
    quote = amount_error = None
    if amount:
        try:
            quote = source.quote(parse_positive_amount(amount))
        except InvalidAmount as refused:
            amount_error, status = str(refused), status_of(refused)
    async with visit.app[keys.engine_key].connect() as conn:
        debt = await funding.owed_by(conn, member.id)
    minimum, maximum = visit.settings.funding_minimum, visit.settings.funding_maximum
    response = render(visit, "funds.html", {
        "title": "Add funds by card", "error": None if error == amount_error else error,
        "amount_error": amount_error, "quote": quote,
        "amount": format_amount(quote.amount_micros) if quote else amount[:40],
        "debt_micros": debt, "limits": (format_amount(minimum), format_amount(maximum)),
        "form_key": secrets.token_urlsafe(24),
    }, status=status)
    if quote is not None:
        response.headers["Content-Security-Policy"] = PAY_PAGE_POLICY
    return response


@page()
async def show_card_page(visit: Visit) -> web.StreamResponse:
    return await card_page(visit, amount=visit.request.query.get("amount", "").strip())


async def pay_refused(visit: Visit, *, error: str, status: int) -> web.StreamResponse:
    """The card page again, with why the payment could not be opened."""
    if visit.member is None or visit.app[keys.funding_source_key] is None:
        return render(visit, "error.html", {"message": error}, status=status)
    posted = await visit.request.post()
    return await card_page(visit, amount=str(posted.get("amount", "")).strip(), error=error,
                           status=status)


@page(on_error=pay_refused)
async def pay_by_card(visit: Visit) -> web.StreamResponse:
    """Open the Checkout session of the quoted top-up and send the browser to it (303). The
    same page's form sent twice opens one session (its key)."""
    member = visit.signed_in()
    posted = await visit.form()
    source = card_source(visit)
    quote = source.quote(parse_positive_amount(str(posted.get("amount", ""))))
    started = await source.start(visit.app[keys.engine_key], member.id, quote,
                                 idempotency_key=f"web:{form_key(posted)}")
    if not started.pay_url.startswith("https://"):
        raise PaymentProviderUnavailable("the payment provider gave no page to pay on: try "
                                         "again later")
    return see_other(started.pay_url)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard/funds/card", show_card_page)
    app.router.add_post("/dashboard/funds/card", pay_by_card)
