"""The dashboard's money in and out against a real gateway on both backends: a card top-up
quoted (the same numbers as GET /api/v1/fundings/quote) then opened on a stand-in of
Stripe's API on loopback and paid by its signed webhook; the funding history and a debt;
deployments without Stripe; the bank account payouts go to, checked, masked and removed."""

import re
from html import unescape

import pytest
from card_top_ups import checkouts, put_in_debt
from sqlalchemy import func, select

from core import funding, members
from core.checks import run_checks
from core.money import parse_amount as eur
from core.payout_accounts import payout_account
from core.schema import fundings, payout_accounts, stripe_checkouts
from core.settings import Settings
from gateway.pages.settings import PagesSettings
from stripe_standin import (
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeStandIn,
    payload,
    session_paid,
    sign,
)

KEY_FIELD = re.compile(r'name="key" value="([^"]+)"')


@pytest.fixture
async def stripe_api():
    standin = await StripeStandIn().start()
    yield standin
    await standin.close()


def stripe_settings(stripe_api: StripeStandIn) -> dict:
    return {"stripe_secret_key": SECRET_KEY, "stripe_webhook_secret": WEBHOOK_SECRET,
            "stripe_api_base": stripe_api.base}


@pytest.fixture
async def card_browser(new_browser, stripe_api):
    """A visitor of a gateway with card funding (and play money asked for: it is refused)."""
    return await new_browser(core=stripe_settings(stripe_api),
                             pages=PagesSettings(sandbox_funding=True))


async def member_id(engine, handle: str) -> int:
    async with engine.connect() as conn:
        return (await members.member_by_handle(conn, handle)).id


async def count(engine, table) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(table))


async def violations(engine) -> dict:
    async with engine.connect() as conn:
        return {f.invariant.name: f.violations for f in await run_checks(conn) if not f.holds}


def shown(page: str, test_id: str) -> str:
    """The text of the first element of that test id, its spaces collapsed."""
    found = re.search(rf'<(\w+)[^>]* data-testid="{test_id}"[^>]*>(.*?)</\1>', page, re.S)
    assert found, f"no {test_id} on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found[2])).split())


async def pay_form(browser, amount: str) -> dict:
    """The fields of the pay form of the quote page of `amount`."""
    page = await browser.get(f"/dashboard/funds/card?amount={amount}")
    return {"csrf": await browser.csrf(f"/dashboard/funds/card?amount={amount}"),
            "key": KEY_FIELD.search(page)[1],
            "amount": re.search(r'type="hidden" name="amount" value="([^"]+)"', page)[1]}


async def test_a_top_up_is_quoted_sent_to_stripe_and_credited_by_its_webhook(
    card_browser, stripe_api, token_for, engine,
):
    browser = card_browser
    await browser.sign_up("ann")
    ann = await member_id(engine, "ann")
    dashboard = await browser.get("/dashboard")
    assert 'action="/dashboard/funds/card"' in dashboard
    assert 'action="/dashboard/funds"' not in dashboard  # no play money beside real money
    assert "between 5.00 and 500.00 EUR" in dashboard and 'data-testid="debt"' not in dashboard
    assert re.search(r'id="card-amount" name="amount"[^>]*value="10.00"', dashboard)
    _, refused = await browser.submit("/dashboard", "/dashboard/funds",
                                      {"key": "k" * 20, "amount": "10"}, status=409)
    assert "add funds by card" in refused and await count(engine, fundings) == 0

    response = await browser.client.get("/dashboard/funds/card?amount=10")
    page = await response.text()
    api = await browser.client.get("/api/v1/fundings/quote?amount=10", headers={
        "Authorization": f"Bearer {await token_for('quoter', 'read')}"})
    quote = await api.json()
    assert [shown(page, f"quote-{n}") for n in ("amount", "fee", "total")] == [
        f"€{quote['amount']}", f"€{quote['fee_estimate']}", f"€{quote['total']}"] == [
        "€10.00", "€0.41", "€10.41"]
    assert "Pay €10.41 by card" in page
    # The pay form leads to Stripe's page: this page's policy lets a form go there.
    assert "form-action 'self' https:" in response.headers["Content-Security-Policy"]
    assert "form-action 'self';" in (await browser.client.get("/dashboard")).headers[
        "Content-Security-Policy"]

    fields = await pay_form(browser, "10")
    assert fields["amount"] == "10.00"
    sent = [await browser.client.post("/dashboard/funds/card", data=fields,
                                      allow_redirects=False) for _ in range(2)]
    assert [s.status for s in sent] == [303, 303]
    assert sent[0].headers["Location"] == sent[1].headers["Location"]  # one session
    assert sent[0].headers["Location"].startswith("https://checkout.stripe.test/pay/cs_test_")
    [asked] = stripe_api.requests
    assert (asked["line_items[0][price_data][unit_amount]"],
            asked["line_items[1][price_data][unit_amount]"]) == ("1000", "41")
    assert asked["metadata[flattr_member_id]"] == str(ann)
    assert asked["success_url"].endswith("/dashboard?funding=paid&session_id={CHECKOUT_SESSION_ID}")
    [(session_id, who, amount)] = await checkouts(engine)
    assert (who, amount) == (ann, eur("10"))

    waiting = await browser.get("/dashboard?funding=cancelled")
    assert "nothing was charged" in waiting
    assert "waiting for the card payment" in shown(waiting, "open-checkout")
    assert "€10.00" in shown(waiting, "open-checkout")

    paid = payload(session_paid(session_id, "pi_ann", 1041))
    hook = await browser.client.post("/webhooks/stripe", data=paid,
                                     headers={"Stripe-Signature": sign(paid)})
    assert hook.status == 200, await hook.text()
    back = await browser.get(f"/dashboard?funding=paid&session_id={session_id}")
    assert "your card payment is being confirmed" in back
    assert shown(back, "giving") == "€10.00"
    assert 'data-testid="open-checkout"' not in back
    row = shown_row(back, "funding")
    assert "card" in row and "€10.00" in row and "received" in row
    assert await violations(engine) == {}


def shown_row(page: str, test_id: str) -> str:
    found = re.search(rf'<tr data-testid="{test_id}">(.*?)</tr>', page, re.S)
    assert found, f"no {test_id} row on the page"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found[1])).split())


@pytest.mark.parametrize("amount", ["4.99", "500.01", "10.005", "ten", "-5"])
async def test_a_wrong_amount_is_said_beside_its_field_and_stripe_is_not_asked(
    card_browser, stripe_api, engine, amount,
):
    await card_browser.sign_up("bob")
    response = await card_browser.client.get("/dashboard/funds/card",
                                             params={"amount": amount})
    page = await response.text()
    assert response.status == 400
    assert 'aria-invalid="true" aria-describedby="card-amount-error"' in page
    assert 'id="card-amount-error"' in page and "Pay " not in page
    if amount in ("4.99", "500.01"):
        assert "between 5.00 and 500.00 EUR" in page
    # The pay form sent with the amount changed by hand: refused the same way.
    fields = {**await pay_form(card_browser, "10"), "amount": amount}
    refused = await card_browser.client.post("/dashboard/funds/card", data=fields,
                                             allow_redirects=False)
    assert refused.status == 400 and 'id="card-amount-error"' in await refused.text()
    assert stripe_api.requests == [] and await count(engine, stripe_checkouts) == 0


async def test_a_pay_form_without_its_token_or_key_or_with_stripe_down_opens_nothing(
    card_browser, stripe_api, engine,
):
    for method in ("GET", "POST"):  # signed out: to sign in first
        signed_out = await card_browser.client.request(
            method, "/dashboard/funds/card?amount=20", allow_redirects=False)
        assert signed_out.status == 303
        assert signed_out.headers["Location"].startswith("/sign-in?next=")
    await card_browser.sign_up("cleo")
    fields = await pay_form(card_browser, "20")
    without_token = await card_browser.client.post(
        "/dashboard/funds/card", data={**fields, "csrf": "x" * 43}, allow_redirects=False)
    assert without_token.status == 403
    without_key = await card_browser.client.post(
        "/dashboard/funds/card", data={**fields, "key": ""}, allow_redirects=False)
    assert without_key.status == 409 and "missing its key" in await without_key.text()
    assert stripe_api.requests == []

    stripe_api.fail = True
    down = await card_browser.client.post("/dashboard/funds/card", data=fields,
                                          allow_redirects=False)
    page = await down.text()
    assert down.status == 503 and "could not be opened" in page
    assert shown(page, "quote-amount") == "€20.00"  # the quote again, to try once more
    assert f"Pay {shown(page, 'quote-total')} by card" in page
    assert await count(engine, stripe_checkouts) == 0
    stripe_api.fail = False
    again = await card_browser.client.post("/dashboard/funds/card", data=fields,
                                           allow_redirects=False)
    assert again.status == 303 and await count(engine, stripe_checkouts) == 1


async def test_without_stripe_the_pages_say_so_and_the_embedded_setup_keeps_play_money(
    new_browser, engine,
):
    browser = await new_browser()  # play money on, no Stripe
    await browser.sign_up("dan")
    page = await browser.get("/dashboard")
    assert shown(page, "no-card-funding") == "Card funding is not available on this deployment."
    assert 'action="/dashboard/funds"' in page and 'action="/dashboard/funds/card"' not in page
    for response in (await browser.client.get("/dashboard/funds/card?amount=10"),
                     await browser.client.post("/dashboard/funds/card", data={
                         "csrf": await browser.csrf("/dashboard"), "key": "k" * 20,
                         "amount": "10"}, allow_redirects=False)):
        assert response.status == 409
        assert "card funding is not available on this deployment" in await response.text()
    _, page = await browser.submit("/dashboard", "/dashboard/funds",
                                   {"key": "k" * 20, "amount": "7"})
    assert "The funds were added" in page
    row = shown_row(page, "funding")
    assert "credited" in row and "€7.00" in row


async def test_without_stripe_nor_play_money_an_admin_credits(new_browser):
    plain = await new_browser(pages=PagesSettings(sandbox_funding=False))
    await plain.sign_up("eve")
    page = await plain.get("/dashboard")
    assert 'data-testid="no-card-funding"' in page and 'data-testid="no-funding"' in page
    assert 'action="/dashboard/funds"' not in page


async def test_a_member_in_debt_sees_it_and_is_offered_to_repay_it(
    card_browser, engine, database_url,
):
    await card_browser.sign_up("fay")
    fay = await member_id(engine, "fay")
    async with engine.begin() as conn:
        await funding.credit(conn, fay, eur("20"), idempotency_key="fay-funding")
        await members.set_budget(conn, fay, eur("6"), Settings(database_url=database_url))
    owed = await put_in_debt(engine, Settings(database_url=database_url, redis_url=None), fay)
    assert owed == eur("6")
    page = await card_browser.get("/dashboard")
    assert "You owe €6.00" in shown(page, "debt")
    assert re.search(r'id="card-amount" name="amount"[^>]*value="6.00"', page)
    row = shown_row(page, "funding")
    assert "credited" in row and "€20.00 taken back" in row
    quote_page = await card_browser.get("/dashboard/funds/card?amount=6.00")
    assert "You owe €6.00" in shown(quote_page, "debt")
    assert shown(quote_page, "quote-amount") == "€6.00"
    assert await violations(engine) == {}


async def test_the_bank_account_form_checks_masks_and_removes(browser, engine):
    await browser.sign_up("hal")
    hal = await member_id(engine, "hal")
    page = await browser.get("/dashboard")
    assert 'data-testid="no-bank-account"' in page

    for typed, field, words in (
        ({"iban": "DE89370400440532013001", "name": "Hal Doe"}, "iban", "not a valid IBAN"),
        ({"iban": "BR1800360305000010009795493C1", "name": "Hal"}, "iban", "outside the SEPA"),
        ({"iban": "DE89370400440532013000", "name": "   "}, "name", "1 to 70 characters"),
        ({"iban": "DE89370400440532013000", "name": "Hal", "bic": "ABNAXX2A"}, "bic",
         "not a valid BIC"),
    ):
        _, page = await browser.submit("/dashboard", "/dashboard/payout-account", typed,
                                       status=400)
        assert f'id="bank-{field}" name="{field}"' in page
        marked = re.search(rf'<input id="bank-{field}"[^>]*>', page)[0]
        assert f'aria-invalid="true" aria-describedby="bank-{field}-error"' in marked
        assert words in shown(page, "bank-error")
        assert page.count('aria-invalid="true"') == 1
        assert f'value="{typed["iban"]}"' in page  # what was typed is kept
        assert 'role="alert">' not in page.split("<h1>", 1)[0]  # no error at the top
    async with engine.connect() as conn:
        assert await payout_account(conn, hal) is None

    _, page = await browser.submit("/dashboard", "/dashboard/payout-account",
                                   {"iban": "de89 3704 0044 0532 0130 00", "name": " Hal  Doe",
                                    "bic": ""})
    assert "bank account for payouts is saved" in page
    assert shown(page, "bank-account") == (
        "Payouts go to IBAN DE89 •••• 3000 in the name of Hal Doe.")
    assert "DE89370400440532013000" not in page and "0532 0130" not in page
    async with engine.connect() as conn:
        stored = await payout_account(conn, hal)
    assert (stored.iban, stored.holder_name, stored.bic) == ("DE89370400440532013000",
                                                             "Hal Doe", None)

    refused = await browser.client.post("/dashboard/payout-account/remove",
                                        data={"csrf": "x" * 43})
    assert refused.status == 403 and await count(engine, payout_accounts) == 1
    _, page = await browser.submit("/dashboard", "/dashboard/payout-account/remove", {})
    assert "removed" in page and 'data-testid="no-bank-account"' in page
    assert await count(engine, payout_accounts) == 0
    assert await count(engine, fundings) == 0
