"""The dashboard: balances, budget, this month's flattrs, recurring flattrs, money in and out
(card top-ups in gateway/pages/funds.py, the bank account payouts go to).

Every change calls the same core services as the JSON API; a money form carries a key made
when the page was drawn, so sending it twice moves the money once.
"""

import secrets

from aiohttp import web

from core import flattrs, funding, members, payouts, replies, subscriptions
from core.errors import InvalidAmount, InvalidBankAccount, InvalidState, NotFound
from core.money import MICROS_PER_UNIT, parse_amount, parse_positive_amount
from core.payout_accounts import remove_payout_account, set_payout_account
from core.periods import Period
from core.things import thing_by_id
from gateway import keys
from gateway.handlers.members import month_of
from gateway.pages.funds import NO_CARD_FUNDING, money_context
from gateway.pages.visits import Visit, form_key, page, render, see_other, status_of
from gateway.present import when

DONE = {
    "budget": "Your monthly budget is saved.",
    "taken-back": "The flattr is taken back.",
    "funds": "The funds were added to your giving balance.",
    "transfer": "The revenue was moved to your giving balance.",
    "payout": "Your payout was requested: an admin pays it out.",
    "subscribed": "You flattr it every month now.",
    "cancelled": "The recurring flattr is cancelled.",
    "bank-account": "Your bank account for payouts is saved.",
    "bank-account-removed": "Your bank account for payouts is removed.",
}
# Where Stripe's Checkout sends the member back (core/funding/stripe.py).
FUNDING_RETURNS = {
    "paid": "Thank you: your card payment is being confirmed. The funds reach your giving "
            "balance as soon as Stripe confirms it, usually within a minute.",
    "cancelled": "The card payment was cancelled: nothing was charged.",
}


def sandbox_funding(visit: Visit) -> bool:
    """Play money ("add funds" from nowhere): never beside real card funding."""
    if visit.app[keys.funding_source_key] is not None:
        return False
    chosen = visit.pages.sandbox_funding
    if chosen is not None:
        return chosen
    return visit.settings.database_url.startswith("sqlite") and visit.settings.redis_url is None


async def dashboard_page(visit: Visit, *, error: str | None = None, status: int = 200,
                         bank_error: InvalidBankAccount | None = None,
                         bank_typed: dict[str, str] | None = None) -> web.StreamResponse:
    member = visit.signed_in()
    async with visit.app[keys.engine_key].connect() as conn:
        month = await month_of(visit.call(conn), member)
        this_month = await flattrs.flattrs_of(conn, member.id, Period.current())
        recurring = []
        for found in await subscriptions.subscriptions_of(conn, member.id):
            if found.cancelled_at is None and found.last_period >= str(Period.current()):
                thing = await thing_by_id(conn, found.thing_id)
                recurring.append({"id": found.id, "thing": thing.key, "url": thing.url,
                                  "last_period": found.last_period})
        paid_out = await payouts.payouts_of(conn, member.id)
        money = await money_context(conn, visit, member)
    query = visit.request.query
    return render(visit, "dashboard.html", {
        "title": "Dashboard", "error": error, "month": month, "flattrs": this_month,
        "recurring": recurring, "payouts": paid_out[-5:][::-1],
        "done": DONE.get(query.get("done", "")) or FUNDING_RETURNS.get(query.get("funding", "")),
        "sandbox_funding": sandbox_funding(visit),
        "sandbox_max": visit.pages.sandbox_funding_max_units,
        "no_card_funding": NO_CARD_FUNDING,
        "payout_threshold": visit.money(visit.settings.payout_threshold),
        "form_key": secrets.token_urlsafe(24), "when": when, **money,
        "bank_error": bank_error, "bank_typed": bank_typed or {},
    }, status=status)


show_dashboard = page()(dashboard_page)


@page(on_error=dashboard_page)
async def set_budget(visit: Visit) -> web.StreamResponse:
    await visit.act(lambda conn, member, posted: members.set_budget(
        conn, member.id, parse_amount(str(posted.get("amount", ""))), visit.settings))
    return see_other("/dashboard?done=budget")


@page(on_error=dashboard_page)
async def take_back(visit: Visit) -> web.StreamResponse:
    await visit.act(lambda conn, member, _: flattrs.take_back(conn, member.id, _id(visit)))
    return see_other("/dashboard?done=taken-back")


@page(on_error=dashboard_page)
async def add_funds(visit: Visit) -> web.StreamResponse:
    member = visit.signed_in()
    posted = await visit.form()
    if visit.app[keys.funding_source_key] is not None:
        raise InvalidState("this Flattr takes real money: add funds by card")
    if not sandbox_funding(visit):
        raise InvalidState("this Flattr has no way to add funds yet: ask an admin to credit "
                           "your giving balance")
    amount = parse_positive_amount(str(posted.get("amount", "")))
    if amount > visit.pages.sandbox_funding_max_units * MICROS_PER_UNIT:
        raise InvalidAmount(f"add at most {visit.pages.sandbox_funding_max_units} at a time")
    async with visit.app[keys.engine_key].begin() as conn:
        await funding.credit(conn, member.id, amount, source="manual", memo="sandbox (web)",
                             idempotency_key=f"web:{member.id}:{form_key(posted)}")
    return see_other("/dashboard?done=funds")


@page(on_error=dashboard_page)
async def transfer(visit: Visit) -> web.StreamResponse:
    await visit.act(lambda conn, member, posted: funding.transfer_revenue_to_giving(
        conn, member.id, parse_positive_amount(str(posted.get("amount", ""))),
        idempotency_key=f"web:{form_key(posted)}"))
    return see_other("/dashboard?done=transfer")


@page(on_error=dashboard_page)
async def request_payout(visit: Visit) -> web.StreamResponse:
    member = visit.signed_in()
    posted = await visit.form()
    raw = str(posted.get("amount", "")).strip()
    amount = parse_positive_amount(raw) if raw else None
    scope, key = f"member:{member.id}", f"web-payout:{form_key(posted)}"
    async with visit.app[keys.engine_key].begin() as conn:
        fingerprint = replies.request_fingerprint("web-payout", raw)
        if await replies.claim_key(conn, scope, key, fingerprint) is None:
            made = await payouts.request_payout(conn, member.id, visit.settings,
                                                amount_micros=amount)
            await replies.store_reply(conn, scope, key, 201, str(made.id))
    return see_other("/dashboard?done=payout")


@page(on_error=dashboard_page)
async def save_payout_account(visit: Visit) -> web.StreamResponse:
    """Store the IBAN and holder's name (checked); what is wrong is shown beside its field,
    with what was typed, and nothing is stored."""
    member = visit.signed_in()
    posted = await visit.form()
    typed = {name: str(posted.get(name, "")).strip()[:200] for name in ("iban", "name", "bic")}
    try:
        async with visit.app[keys.engine_key].begin() as conn:
            await set_payout_account(conn, member.id, typed["iban"], typed["name"],
                                     typed["bic"] or None)
    except InvalidBankAccount as refused:
        return await dashboard_page(visit, status=status_of(refused), bank_error=refused,
                                    bank_typed=typed)
    return see_other("/dashboard?done=bank-account#bank-account-title")


@page(on_error=dashboard_page)
async def remove_bank_account(visit: Visit) -> web.StreamResponse:
    await visit.act(lambda conn, member, _: remove_payout_account(conn, member.id))
    return see_other("/dashboard?done=bank-account-removed#bank-account-title")


@page(on_error=dashboard_page)
async def subscribe(visit: Visit) -> web.StreamResponse:
    member = visit.signed_in()
    posted = await visit.form()
    try:
        months = int(str(posted.get("months", "")))
    except ValueError:
        raise InvalidState("months is a whole number from 1 to 120") from None
    async with visit.app[keys.engine_key].begin() as conn:
        await subscriptions.subscribe(conn, member.id, str(posted.get("url", "")), months)
    return see_other("/dashboard?done=subscribed")


@page(on_error=dashboard_page)
async def cancel_subscription(visit: Visit) -> web.StreamResponse:
    await visit.act(lambda conn, member, _: subscriptions.cancel(conn, member.id, _id(visit)))
    return see_other("/dashboard?done=cancelled")


def _id(visit: Visit) -> int:
    raw = visit.request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"{raw[:20]!r} is not an id")
    return int(raw)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard", show_dashboard)
    app.router.add_post("/dashboard/budget", set_budget)
    app.router.add_post("/dashboard/flattrs/{id}/take-back", take_back)
    app.router.add_post("/dashboard/funds", add_funds)
    app.router.add_post("/dashboard/transfer", transfer)
    app.router.add_post("/dashboard/payout", request_payout)
    app.router.add_post("/dashboard/payout-account", save_payout_account)
    app.router.add_post("/dashboard/payout-account/remove", remove_bank_account)
    app.router.add_post("/dashboard/recurring", subscribe)
    app.router.add_post("/dashboard/recurring/{id}/cancel", cancel_subscription)
