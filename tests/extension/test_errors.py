"""End to end on PostgreSQL: every failure the member can meet has clear words."""

import aiohttp
import pytest
from browser_harness import REPO, api_get, playwright_api, popup_state, screenshot, sign_in
from sqlalchemy import update

from core.schema import members
from gateway.errors import STATUS_OF_CODE

pytestmark = pytest.mark.postgres_only
expect = playwright_api().expect
RED = [198, 40, 40, 255]


async def test_own_page_other_schemes_and_a_budget_not_set(gateway, browser, member, site, engine):
    await sign_in(browser, gateway, member)

    _, tab_id = await browser.open(site.url("/reader/diary.html"))
    popup = await browser.popup(tab_id)
    # The gateway knows the page's owner from the member's claim before anyone flattred it,
    # so the popup refuses before a click.
    await expect(popup.locator("#notice")).to_have_text(
        "This is your own page: you can't flattr yourself.")
    shown = await popup_state(popup)
    assert shown["noticeKind"] == "error"
    assert shown["owner"] == "This is your own page." and shown["buttonDisabled"]
    await screenshot(popup, "error")
    assert (await browser.badge(tab_id)).text == "•"  # a known owner: the member
    # The shortcut has no popup to speak in: it says so on the badge.
    tab = await browser.run("async (tabId) => chrome.tabs.get(tabId)", tab_id)
    refused = await browser.run("async (tab) => globalThis.flattr.flattrTab(tab)", tab)
    assert refused["error"]["code"] == "own_thing"
    badge = await browser.badge(tab_id)
    assert (badge.text, badge.color) == ("!", RED)
    assert "your own page" in badge.title

    # Not a web page: the popup's button is disabled, the shortcut refuses on the badge.
    _, settings_tab = await browser.open(browser.url("options/options.html"))
    popup = await browser.popup(settings_tab, popup)
    shown = await popup_state(popup)
    assert shown["buttonDisabled"] and shown["noticeKind"] == "error"
    assert shown["notice"] == "Only web pages (http and https addresses) can be flattred."
    refused = await browser.run("""async (tabId) => globalThis.flattr.flattrTab(
        {id: tabId, url: "chrome://settings/", title: "Settings"})""", settings_tab)
    assert refused["error"]["code"] == "invalid_url"
    assert (await browser.badge(settings_tab)).text == "!"

    # No budget: flattrs are counted, the popup says they give nothing yet.
    async with engine.begin() as conn:
        await conn.execute(update(members).where(members.c.id == member.id)
                           .values(budget_micros=None))
    _, tab_id = await browser.open(site.url("/articles/compost.html"))
    popup = await browser.popup(tab_id, popup)
    await popup.click("#flattr")
    await expect(popup.locator("#flattr")).to_have_text("Take back")
    shown = await popup_state(popup)
    assert shown["budget"] == "not set"
    assert shown["monthNote"].startswith("No monthly budget yet")


async def test_a_revoked_token_signs_out_and_a_wrong_password_is_told(
    gateway, browser, member, site
):
    options = await browser.context.new_page()
    await options.goto(browser.url("options/options.html"))
    await options.fill("#gateway", gateway.url)
    await options.fill("#handle", member.handle)
    await options.fill("#password", "not the password")
    await options.click("#sign-in")
    await expect(options.locator("#account-message")).to_have_text(
        "The handle or the password is wrong.")
    assert "auth" not in (await browser.storage())["local"]

    await sign_in(browser, gateway, member)
    auth = (await browser.storage())["local"]["auth"]
    # The token is revoked elsewhere (here: by itself, as another device signing out would).
    async with aiohttp.ClientSession() as session, session.delete(
        f"{gateway.api}/tokens/{auth['tokenId']}",
        headers={"Authorization": f"Bearer {auth['token']}"},
    ) as response:
        assert response.status == 200
    _, tab_id = await browser.open(site.url("/articles/gardening.html"))
    popup = await browser.popup(tab_id)
    assert (await popup_state(popup))["signedOut"]
    assert "auth" not in (await browser.storage())["local"]
    status, _ = await api_get(gateway, "/me", auth["token"])
    assert status == 401


async def test_every_gateway_error_has_words(browser):
    page = await browser.context.new_page()
    await page.goto(browser.url("popup/popup.html"))
    codes = [*sorted(STATUS_OF_CODE), "offline", "not_signed_in", "no_access", "queue_full"]
    words = await page.evaluate("""async (codes) => {
        const { describe } = await import(chrome.runtime.getURL("messages.js"));
        const said = {};
        for (const code of codes) {
            said[code] = describe({ code, message: "", status: 400, retryAfterSeconds: 7 });
        }
        said.unknown500 = describe({ code: "new_code", message: "", status: 502 });
        return said;
    }""", codes)
    assert all(words[code] for code in codes), [c for c in codes if not words[c]]
    assert words["rate_limited"] == "Too many requests: try again in 7 s."
    assert words["unauthorized"].startswith("Your sign-in has ended")
    assert words["not_signed_in"].startswith("Sign in to flattr")
    assert words["own_thing"] == "This is your own page: you can't flattr yourself."
    assert words["invalid_url"].startswith("Only web pages")
    assert words["budget_below_minimum"].startswith("Your monthly budget is below")
    assert words["offline"] == "The Flattr gateway can't be reached right now."
    assert words["unknown500"] == "The gateway failed on its side: try again later."
    assert (REPO / "extension" / "messages.js").exists()
