"""End to end on PostgreSQL: automatic flattring, off by default. Attention is measured on
the page and added up in the worker; only a page that held it ~50 s is flattred, once.
These tests run the extension with its optional access to web pages granted, on pages
under public-looking names; loopback and private addresses are never counted."""

import asyncio

import pytest
from browser_harness import (
    PUBLIC_HOST,
    api_get,
    eventually,
    flattred_urls,
    playwright_api,
    popup_state,
    sign_in,
)

pytestmark = pytest.mark.postgres_only
expect = playwright_api().expect

REPORT = """async ([report, sender]) => globalThis.flattr.recordAttention(
    {type: "attention", kind: "interaction", audio: false, canonical: null, declared: false,
     title: "A long read", ...report}, sender)"""
REGISTERED = "async () => chrome.scripting.getRegisteredContentScripts()"
COUNTED = "async (key) => (await chrome.storage.session.get(key))[key] ?? null"
# Every report the attention script sends, as the worker receives it.
WATCH_REPORTS = """async () => {
    globalThis.reports = [];
    chrome.runtime.onMessage.addListener((message) => {
        if (message?.type === "attention") globalThis.reports.push(message);
    });
}"""


def sender_of(url: str, tab_id: int) -> dict:
    return {"tab": {"id": tab_id, "incognito": False, "url": url}, "frameId": 0, "url": url}


async def turn_on(browser) -> None:
    await browser.run("async () => chrome.storage.local.set({settings: {autoFlattr: true}})")
    await eventually(lambda: browser.run(REGISTERED), what="the attention script registered")


async def read_for_a_while(page, seconds: float = 1.2) -> None:
    """Real input: the wheel and the arrow keys, as a reader scrolls."""
    await page.bring_to_front()
    for _ in range(round(seconds / 0.2)):
        await page.mouse.wheel(0, 200)
        await page.keyboard.press("ArrowDown")
        await asyncio.sleep(0.2)


async def test_attention_flattrs_a_page_once_and_can_be_taken_back(
    gateway, granted_browser, member, site, engine
):
    browser = granted_browser
    await sign_in(browser, gateway, member)
    url = site.public_url("/articles/long-read.html")
    page, tab_id = await browser.open(url)
    sender = sender_of(url, tab_id)

    # Off by default: reports are not even counted, and no content script is registered.
    answer = await browser.run(REPORT, [{"ms": 30_000}, sender])
    assert answer == {"counted": False, "reason": "automatic flattring is off"}
    assert await browser.run(REGISTERED) == []

    # Turned on: the attention script is registered, and counts real input on the page.
    await turn_on(browser)
    await page.reload()
    await read_for_a_while(page)
    other, _ = await browser.open(site.public_url("/articles/compost.html"))  # hides the page
    counted = await eventually(lambda: browser.run(COUNTED, f"attention:{url}"),
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
    assert await flattred_urls(engine, member.id) == [url]
    assert (await browser.run(REPORT, [{"ms": 30_000}, sender]))["counted"] is False
    token = (await browser.storage())["local"]["auth"]["token"]
    _, listed = await api_get(gateway, "/flattrs", token)
    assert [f["source"] for f in listed["flattrs"]] == ["automatic"]

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
    await browser.run("""async (host) => chrome.storage.local.set(
        {settings: {autoFlattr: true, autoBlocklist: [host]}})""", PUBLIC_HOST)
    other_url = site.public_url("/articles/compost.html")
    blocked = await browser.run(REPORT, [{"ms": 30_000}, sender_of(other_url, tab_id)])
    assert blocked == {"counted": False, "reason": "blocked site"}
    await other.close()


async def test_private_addresses_are_never_counted_and_queries_never_sent(
    gateway, granted_browser, member, site, engine
):
    browser = granted_browser
    await sign_in(browser, gateway, member)
    await turn_on(browser)
    _, tab_id = await browser.open(site.public_url("/articles/compost.html"))

    for url in [site.url("/articles/long-read.html"), "http://localhost:8000/admin",
                "http://192.168.1.20/photos", "http://[fd00::7]/", "https://nas.local/",
                "https://wiki.corp.internal/payroll", "http://intranet/"]:
        refused = await browser.run(REPORT, [{"ms": 30_000}, sender_of(url, tab_id)])
        assert refused == {"counted": False, "reason": "private address"}, url

    # The query (sessions, search terms, tokens) is left out of what is flattred.
    with_query = site.public_url("/articles/offline.html?session=s3cret&utm_source=feed")
    for _ in range(2):
        done = await browser.run(REPORT, [{"ms": 30_000}, sender_of(with_query, tab_id)])
    assert done["flattred"] is True, done
    assert await flattred_urls(engine, member.id) == [site.public_url("/articles/offline.html")]


async def test_a_page_that_scrolls_itself_gets_no_attention(granted_browser, gateway, member, site):
    browser = granted_browser
    await sign_in(browser, gateway, member)
    await turn_on(browser)
    await browser.run(WATCH_REPORTS)
    url = site.public_url("/articles/self-scrolling.html")
    page, _ = await browser.open(url)
    await page.bring_to_front()
    start = await page.evaluate("scrollY")
    await asyncio.sleep(6.5)  # longer than the script waits before it reports
    assert await page.evaluate("scrollY") != start  # it did scroll, by itself
    hidden, _ = await browser.open(site.public_url("/articles/compost.html"))
    await asyncio.sleep(1)
    assert await browser.run("async () => globalThis.reports") == []
    assert await browser.run(COUNTED, f"attention:{url}") is None

    # The same page read by somebody: their input counts.
    await read_for_a_while(page)
    await hidden.bring_to_front()
    reports = await eventually(lambda: browser.run("async () => globalThis.reports"),
                               what="a report of real input")
    assert reports[0]["ms"] >= 500 and reports[0]["kind"] == "interaction"
