"""End to end on PostgreSQL: a card top-up from the popup. The real gateway is pointed at a
stand-in of Stripe's API on loopback (tests/stripe_standin.py); the popup shows the card fee
before paying, then Stripe's Checkout page opens in a new tab. Without Stripe the popup says
so in the gateway's words; a member in debt is told, and pointed to the top-up."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from browser_harness import (
    GatewayProcess,
    api_get,
    eventually,
    playwright_api,
    popup_state,
    screenshot,
    sign_in,
)
from card_top_ups import put_in_debt

from stripe_standin import SECRET_KEY, WEBHOOK_SECRET, StripeStandIn

pytestmark = pytest.mark.postgres_only
expect = playwright_api().expect


@pytest.fixture
async def stripe_api() -> AsyncIterator[StripeStandIn]:
    standin = await StripeStandIn().start()
    try:
        yield standin
    finally:
        await standin.close()


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path, stripe_api: StripeStandIn,
                  request) -> AsyncIterator[GatewayProcess]:
    """The gateway with card funding through the stand-in; without it when parametrized
    with False."""
    card = getattr(request, "param", True)
    settings = {"FLATTR_STRIPE_SECRET_KEY": SECRET_KEY,
                "FLATTR_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "FLATTR_STRIPE_API_BASE": stripe_api.base} if card else {}
    process = GatewayProcess(database_url, tmp_path, settings)
    await process.spawn()
    try:
        yield process
    finally:
        await process.stop()


async def opened_at(browser, page) -> str:
    """The address a tab was sent to. The stand-in's Checkout host does not resolve (nothing
    reaches the network), so the tab shows Chromium's error page, whose own address is
    chrome-error://…; its history entry keeps the one asked for."""
    session = await browser.context.new_cdp_session(page)
    history = await eventually(lambda: session.send("Page.getNavigationHistory"),
                               what="the tab's history")
    return history["entries"][history["currentIndex"]]["url"]


async def top_up_state(popup) -> dict:
    return await popup.evaluate("""() => {
        const text = (id) => {
            const element = document.getElementById(id);
            return element && !element.hidden && !element.closest("[hidden]")
                ? element.textContent.trim() : null;
        };
        const pay = document.getElementById("topup-pay");
        return {
            open: !document.getElementById("topup").hidden,
            amount: document.getElementById("topup-amount").value,
            fee: text("topup-fee"), total: text("topup-total"), added: text("topup-added"),
            limits: text("topup-limits"), message: text("topup-message"),
            messageKind: document.getElementById("topup-message").dataset.kind ?? null,
            pay: pay.textContent.trim(), payDisabled: pay.disabled,
            dashboard: text("topup-dashboard"),
        };
    }""")


async def test_the_popup_quotes_a_top_up_then_opens_stripe_checkout_in_a_new_tab(
    gateway, browser, member, site, stripe_api
):
    await sign_in(browser, gateway, member)
    _, tab_id = await browser.open(site.url("/articles/gardening.html"))
    popup = await browser.popup(tab_id)
    await popup.click("#top-up")
    await expect(popup.locator("#topup-total")).to_have_text("€10.41")
    shown = await top_up_state(popup)
    # 10.00 reaches the giving balance; Stripe's 1.5 % + 0.25 is paid on top.
    assert (shown["amount"], shown["fee"], shown["added"]) == ("10.00", "€0.41", "€10.00")
    assert shown["limits"].startswith("From €5.00 to €500.00")
    assert (shown["pay"], shown["payDisabled"]) == ("Pay €10.41 by card", False)

    # Outside the limits: the gateway's words, nothing to pay.
    await popup.fill("#topup-amount", "3")
    await expect(popup.locator("#topup-message")).to_have_text(
        "A top-up is between 5.00 and 500.00 EUR.")
    assert (await top_up_state(popup))["payDisabled"]

    await popup.fill("#topup-amount", "25,50")  # a decimal comma, as typed in many languages
    await expect(popup.locator("#topup-total")).to_have_text("€26.15")
    assert not stripe_api.requests  # a quote asks nothing of Stripe

    async with browser.context.expect_page(timeout=10_000) as opened:
        await popup.click("#topup-pay")
    checkout = await opened.value
    [asked] = stripe_api.requests
    session = stripe_api.replies[asked["Idempotency-Key"]]
    assert await opened_at(browser, checkout) == session["url"]
    assert session["url"].startswith("https://checkout.stripe.test/pay/cs_test_")
    assert (asked["line_items[0][price_data][unit_amount]"],
            asked["line_items[1][price_data][unit_amount]"]) == ("2550", "65")
    assert asked["metadata[flattr_member_id]"] == str(member.id)
    await expect(popup.locator("#topup-message")).to_have_text(
        "Stripe's Checkout page opened in a new tab: your giving balance grows once the "
        "payment is confirmed.")

    token = (await browser.storage())["local"]["auth"]["token"]
    status, listed = await api_get(gateway, "/fundings", token)
    assert status == 200
    assert [(c["session_id"], c["amount"]) for c in listed["open_checkouts"]] == [
        (session["id"], "25.50")]
    status, me = await api_get(gateway, "/me", token)
    assert me["balances"]["giving"] == "50.00"  # nothing credited before Stripe confirms


@pytest.mark.parametrize("gateway", [False], indirect=True)
async def test_without_stripe_the_popup_says_so_in_the_gateways_words(
    gateway, browser, member, site
):
    await sign_in(browser, gateway, member)
    _, tab_id = await browser.open(site.url("/articles/gardening.html"))
    popup = await browser.popup(tab_id)
    pages = len(browser.context.pages)
    await popup.click("#top-up")
    await expect(popup.locator("#topup-message")).to_have_text(
        "Card funding is not configured on this deployment: ask an admin to credit you.")
    shown = await top_up_state(popup)
    assert shown["payDisabled"] and shown["fee"] is None and shown["messageKind"] == "error"
    await popup.locator("#topup-form").evaluate("form => form.requestSubmit()")
    assert len(browser.context.pages) == pages  # no Checkout tab


async def test_a_member_in_debt_is_told_and_pointed_to_a_top_up(
    gateway, browser, member, site, engine, settings
):
    # The month before was given away (10.00 of the 50.00), then the 50.00 funding was
    # refunded: 40.00 comes back from giving, 10.00 is owed.
    assert await put_in_debt(engine, settings, member.id) == 10_000_000

    await sign_in(browser, gateway, member)
    _, tab_id = await browser.open(site.url("/articles/compost.html"))
    popup = await browser.popup(tab_id)
    shown = await popup_state(popup)
    assert shown["monthNote"] == ("You owe €10.00 after a card refund or dispute: your flattrs "
                                  "are paused until a top-up repays it.")
    assert await popup.get_attribute("#top-up", "class") == "primary"

    await popup.click("#flattr")  # the gateway refuses it: 402 debt_outstanding
    await expect(popup.locator("#notice")).to_have_text(
        "You owe money after a card refund or dispute: top up to flattr again.")
    # The top-up opens by itself, offering what is owed.
    await expect(popup.locator("#topup-total")).to_have_text("€10.41")
    shown = await top_up_state(popup)
    assert shown["open"] and shown["amount"] == "10.00" and not shown["payDisabled"]
    await screenshot(popup, "top-up-in-debt")
