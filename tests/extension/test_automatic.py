"""End to end on PostgreSQL: automatic flattring, off by default. Attention is measured on
the page and added up in the worker; only a page that held it ~50 s is flattred, once.
These tests run the extension with its optional access to web pages granted, on pages
under public-looking names; loopback and private addresses are never counted."""

import asyncio
from urllib.parse import parse_qs, urlsplit

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


async def turn_on(browser, **settings: bool) -> None:
    await browser.run(
        "async (more) => chrome.storage.local.set({settings: {autoFlattr: true, ...more}})",
        settings)
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


async def test_private_addresses_are_never_counted(gateway, granted_browser, member, site):
    browser = granted_browser
    await sign_in(browser, gateway, member)
    await turn_on(browser)
    _, tab_id = await browser.open(site.public_url("/articles/compost.html"))

    for url in [site.url("/articles/long-read.html"), "http://localhost:8000/admin",
                "http://192.168.1.20/photos", "http://[fd00::7]/", "https://nas.local/",
                "https://wiki.corp.internal/payroll", "http://intranet/"]:
        refused = await browser.run(REPORT, [{"ms": 30_000}, sender_of(url, tab_id)])
        assert refused == {"counted": False, "reason": "private address"}, url


async def test_an_address_with_a_query_is_neither_flattred_nor_looked_up(
    gateway, granted_browser, member, site, engine
):
    """The query (a video, a session, search terms) is never sent, nor cut off: cut off, every
    youtube.com/watch?v=… would be the one page /watch."""
    browser = granted_browser
    await sign_in(browser, gateway, member)
    lookups: list[str] = []  # the page lookups that reach the gateway, from any tab or worker
    browser.context.on("request", lambda request: lookups.append(request.url)
                       if request.url.startswith(f"{gateway.api}/things") else None)
    await turn_on(browser, showStatus=True)
    await browser.run(WATCH_REPORTS)

    # A page without a query is looked up for its badge...
    plain = site.public_url("/articles/compost.html")
    page, tab_id = await browser.open(plain)
    await eventually(lambda: _badge_text(browser, tab_id, "?"), what="the plain page's badge")
    assert [_page_of(url) for url in lookups] == [plain]

    # ...and when it rewrites its address to one with a query, nothing is sent, and the
    # badge no longer shows the previous address's status.
    await page.evaluate("history.pushState(null, '', '?v=dQw4w9WgXcQ&session=s3cret')")
    with_query = f"{plain}?v=dQw4w9WgXcQ&session=s3cret"
    await eventually(lambda: _badge_text(browser, tab_id, ""), what="a neutral badge")
    assert await browser.run("async (id) => (await chrome.tabs.get(id)).url", tab_id) == with_query
    await asyncio.sleep(1.5)  # longer than the badge's debounce
    assert [_page_of(url) for url in lookups] == [plain]

    # Real input on it is reported by the page, and counted neither for that address nor for
    # the document's first one (which the browser still gives as the message's sender).
    await read_for_a_while(page)
    hidden, _ = await browser.open(site.url("/articles/long-read.html"))  # private: no lookup
    reports = await eventually(lambda: browser.run("async () => globalThis.reports"),
                               what="a report")
    assert reports[0]["url"] == with_query
    assert await browser.run(COUNTED, f"attention:{with_query}") is None
    assert await browser.run(COUNTED, f"attention:{plain}") is None

    # Moved on to an address without a query, the same document's input counts for it.
    await page.evaluate("history.pushState(null, '', '/articles/long-read.html')")
    read = site.public_url("/articles/long-read.html")
    await eventually(lambda: _badge_text(browser, tab_id, "?"), what="the new address's badge")
    await read_for_a_while(page)
    await hidden.bring_to_front()
    counted = await eventually(lambda: browser.run(COUNTED, f"attention:{read}"),
                               what="attention counted for the new address")
    assert counted["ms"] >= 500
    assert await browser.run(COUNTED, f"attention:{plain}") is None
    assert [_page_of(url) for url in lookups] == [plain, read]

    # Refused too: an empty query, and a page whose canonical URL has a query.
    empty_query = site.public_url("/articles/offline.html?")
    for address, canonical in [(with_query, None), (empty_query, None), (plain, f"{plain}?p=2")]:
        for _ in range(2):
            refused = await browser.run(REPORT, [{"ms": 30_000, "canonical": canonical},
                                                 sender_of(address, tab_id)])
            assert refused == {"counted": False, "reason": "address with a query"}, address
    assert await flattred_urls(engine, member.id) == []
    assert [_page_of(url) for url in lookups] == [plain, read]

    # A page without a query is flattred, as is one whose same-site canonical URL has none.
    offline = site.public_url("/articles/offline.html")
    canonical = site.public_url("/articles/gardening")
    for address, link in [(plain, None), (f"{offline}?utm_source=feed", canonical)]:
        for _ in range(2):
            done = await browser.run(REPORT, [{"ms": 30_000, "canonical": link},
                                              sender_of(address, tab_id)])
        assert done["flattred"] is True, done
    assert sorted(await flattred_urls(engine, member.id)) == sorted([plain, canonical])
    await hidden.close()


async def _badge_text(browser, tab_id: int, text: str) -> bool:
    return (await browser.badge(tab_id)).text == text


def _page_of(lookup: str) -> str:
    return parse_qs(urlsplit(lookup).query)["url"][0]


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
