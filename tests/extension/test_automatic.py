"""End to end on PostgreSQL: automatic flattring, off by default. Attention is measured on
the page and added up in the worker; only a page that held it ~50 s is flattred, once."""

import asyncio

import pytest
from browser_harness import eventually, flattred_urls, playwright_api, popup_state, sign_in

pytestmark = pytest.mark.postgres_only
expect = playwright_api().expect

REPORT = """async ([report, sender]) => globalThis.flattr.recordAttention(
    {type: "attention", kind: "interaction", audio: false, canonical: null, declared: false,
     title: "A long read", ...report}, sender)"""


async def test_attention_flattrs_a_page_once_and_can_be_taken_back(
    gateway, browser, member, site, engine
):
    await sign_in(browser, gateway, member)
    url = site.url("/articles/long-read.html")
    page, tab_id = await browser.open(url)
    sender = {"tab": {"id": tab_id, "incognito": False, "url": url}, "frameId": 0, "url": url}

    # Off by default: reports are not even counted, and no content script is registered.
    answer = await browser.run(REPORT, [{"ms": 30_000}, sender])
    assert answer == {"counted": False, "reason": "automatic flattring is off"}
    assert await browser.run("async () => chrome.scripting.getRegisteredContentScripts()") == []

    await browser.run("async () => chrome.storage.local.set({settings: {autoFlattr: true}})")
    # Turned on without access to pages (a test cannot grant it): still nothing registered.
    await browser.run("async () => globalThis.flattr.ready")
    assert await browser.run("async () => chrome.scripting.getRegisteredContentScripts()") == []

    # The attention script, injected as registration would, counts real input on the page.
    await browser.run("""async (tabId) => chrome.scripting.executeScript(
        {target: {tabId}, files: ["content/attention.js"]})""", tab_id)
    await page.bring_to_front()
    for _ in range(6):
        await page.mouse.wheel(0, 200)
        await page.keyboard.press("ArrowDown")
        await asyncio.sleep(0.2)
    other, _ = await browser.open(site.url("/articles/compost.html"))  # hides the page: report
    counted = await eventually(lambda: browser.run(
        "async (key) => (await chrome.storage.session.get(key))[key]", f"attention:{url}"),
        what="attention reported by the page")
    assert 500 <= counted["ms"] <= 5_000, counted
    assert len(await flattred_urls(engine, member.id)) == 0  # nothing left the browser

    # Reports are capped, private windows and frames are not counted.
    in_a_frame = {**sender, "frameId": 3}
    assert (await browser.run(REPORT, [{"ms": 30_000}, in_a_frame]))["counted"] is False
    incognito = {**sender, "tab": {**sender["tab"], "incognito": True}}
    assert (await browser.run(REPORT, [{"ms": 30_000}, incognito]))["counted"] is False
    first = await browser.run(REPORT, [{"ms": 10 ** 9}, sender])
    assert first["counted"] and first["ms"] == counted["ms"] + 30_000
    assert len(await flattred_urls(engine, member.id)) == 0

    second = await browser.run(REPORT, [{"ms": 30_000}, sender])
    assert second["flattred"] is True, second
    assert len(await flattred_urls(engine, member.id)) == 1
    assert (await browser.run(REPORT, [{"ms": 30_000}, sender]))["counted"] is False

    popup = await browser.popup(tab_id)
    shown = await popup_state(popup)
    assert shown["notice"].startswith("Flattred automatically after ")
    assert shown["button"] == "Take back"
    await popup.click("#flattr")
    await expect(popup.locator("#flattr")).to_have_text("Flattr")
    assert len(await flattred_urls(engine, member.id)) == 0

    # Taken back: never automatically again this month, even after a new count.
    await browser.run("async (key) => chrome.storage.session.remove(key)", f"attention:{url}")
    await browser.run(REPORT, [{"ms": 30_000}, sender])
    again = await browser.run(REPORT, [{"ms": 30_000}, sender])
    assert again["flattred"] is False and again["reason"] == "taken back this month"
    assert len(await flattred_urls(engine, member.id)) == 0

    # A site on the never list is not even counted.
    await browser.run("""async () => chrome.storage.local.set(
        {settings: {autoFlattr: true, autoBlocklist: ["127.0.0.1"]}})""")
    other_url = site.url("/articles/compost.html")
    blocked = await browser.run(REPORT, [
        {"ms": 30_000}, {**sender, "url": other_url, "tab": {**sender["tab"], "url": other_url}}])
    assert blocked == {"counted": False, "reason": "blocked site"}
    await other.close()
