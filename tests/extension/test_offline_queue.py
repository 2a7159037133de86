"""End to end on PostgreSQL: a flattr made while the gateway is down waits in storage with
its Idempotency-Key and reaches the gateway exactly once when it is back."""

import asyncio

import pytest
from browser_harness import flattred_urls, playwright_api, popup_state, screenshot, sign_in

pytestmark = pytest.mark.postgres_only
expect = playwright_api().expect


async def test_a_flattr_made_offline_is_sent_once(gateway, browser, member, site, engine):
    await sign_in(browser, gateway, member)
    _, tab_id = await browser.open(site.url("/articles/offline.html"))
    popup = await browser.popup(tab_id)

    await gateway.stop()
    await popup.click("#flattr")
    await expect(popup.locator("#flattr")).to_have_text("Cancel")
    shown = await popup_state(popup)
    assert shown["noticeKind"] == "pending"
    assert shown["notice"].startswith("Pending: your flattr waits to be sent")
    await screenshot(popup, "pending")
    badge = await browser.badge(tab_id)
    assert badge.text == "…"

    queue = (await browser.storage())["local"]["queue"]
    assert len(queue) == 1
    item = queue[0]
    assert item["url"] == site.url("/articles/offline.html")
    assert item["idempotencyKey"] and item["attempts"] == 1
    assert item["lastError"]["code"] == "offline"
    alarm = await browser.run("async () => chrome.alarms.get('flattr-queue')")
    assert alarm is not None

    # Reopened while the gateway is still down, the popup shows it pending.
    popup = await browser.popup(tab_id, popup)
    assert (await popup_state(popup))["button"] == "Cancel"
    assert len(await flattred_urls(engine, member.id)) == 0

    await gateway.start()
    # The alarm's listener, run twice at once (as if the alarm rang while the popup sent).
    ring = "async () => globalThis.flattr.onAlarm({name: 'flattr-queue'})"
    first, second = await asyncio.gather(browser.run(ring), browser.run(ring))
    sent = first + second
    assert [outcome["state"] for outcome in sent] == ["flattred"], sent
    assert len(await flattred_urls(engine, member.id)) == 1
    assert (await browser.storage())["local"]["queue"] == []
    assert await browser.run("async () => chrome.alarms.get('flattr-queue')") is None
    assert (await browser.badge(tab_id)).text == "✓"

    # The worker stopped after the gateway had answered but before the item left storage:
    # the retry sends the same key, the gateway replays its first answer.
    await browser.run("async (item) => chrome.storage.local.set({queue: [item]})", item)
    replay = await browser.run(ring)
    assert replay[0]["state"] == "flattred"
    assert replay[0]["flattr"]["id"] == sent[0]["flattr"]["id"]
    assert replay[0]["created"] is True  # the first answer, replayed
    assert len(await flattred_urls(engine, member.id)) == 1

    popup = await browser.popup(tab_id, popup)
    assert (await popup_state(popup))["button"] == "Take back"


async def test_the_gateway_back_clears_the_notice_and_sends_what_waited(
    gateway, browser, member, site, engine
):
    await sign_in(browser, gateway, member)
    _, waiting_tab = await browser.open(site.url("/articles/offline.html"))
    _, looked_up_tab = await browser.open(site.url("/articles/compost.html"))
    popup = await browser.popup(waiting_tab)
    await gateway.stop()
    await popup.click("#flattr")
    await expect(popup.locator("#flattr")).to_have_text("Cancel")
    popup = await browser.popup(looked_up_tab, popup)
    offline = "The Flattr gateway can't be reached right now."
    assert (await popup_state(popup))["notice"] == offline

    # Back within the minute: the next look at either page is fresh, and the flattr that
    # waited goes at once rather than at its next retry.
    await gateway.start()
    popup = await browser.popup(looked_up_tab, popup)
    shown = await popup_state(popup)
    assert shown["notice"] is None and shown["owner"], shown
    popup = await browser.popup(waiting_tab, popup)
    shown = await popup_state(popup)
    assert (shown["button"], shown["notice"]) == ("Take back", "You flattred this page this month.")
    assert await flattred_urls(engine, member.id) == [site.url("/articles/offline.html")]
