"""End to end on PostgreSQL: "Flattr this link" (the context menu's code path) and the
keyboard shortcut's, each confirmed on the badge."""

import pytest
from browser_harness import flattred_urls, sign_in

pytestmark = pytest.mark.postgres_only


async def test_flattr_this_link_and_the_shortcut(gateway, browser, member, site, engine):
    await sign_in(browser, gateway, member)
    page, tab_id = await browser.open(site.url("/articles/gardening.html"))
    link = await page.eval_on_selector("#linked", "a => a.href")

    # What contextMenus.onClicked calls for the "Flattr this link" item.
    outcome = await browser.run("""async ([linkUrl, tabId]) => globalThis.flattr.flattrLink(
        {menuItemId: "flattr-link", linkUrl, pageUrl: ""}, {id: tabId})""", [link, tab_id])
    assert outcome["state"] == "flattred" and outcome["created"], outcome
    assert await flattred_urls(engine, member.id) == [link]
    badge = await browser.badge(tab_id)
    assert badge.text == "+1" and "flattred" in badge.title  # a short confirmation

    # The same link again: the gateway says it is already flattred; still one flattr.
    again = await browser.run("""async ([linkUrl, tabId]) => globalThis.flattr.flattrLink(
        {menuItemId: "flattr-link", linkUrl}, {id: tabId})""", [link, tab_id])
    assert again["state"] == "flattred" and not again["created"]
    assert await flattred_urls(engine, member.id) == [link]

    # What commands.onCommand calls for the shortcut: the page's canonical URL is flattred.
    tab = await browser.run("async (tabId) => chrome.tabs.get(tabId)", tab_id)
    outcome = await browser.run("async (tab) => globalThis.flattr.flattrTab(tab)", tab)
    assert outcome["state"] == "flattred", outcome
    assert await flattred_urls(engine, member.id) == sorted([link, site.url("/articles/gardening")])
    badge = await browser.badge(tab_id)
    assert badge.text == "✓"

    # Links to anything but web pages are refused before any request.
    refused = await browser.run("""async (tabId) => globalThis.flattr.flattrLink(
        {menuItemId: "flattr-link", linkUrl: "mailto:someone@example.org"}, {id: tabId})""",
        tab_id)
    assert refused["state"] == "error" and refused["error"]["code"] == "invalid_url"
