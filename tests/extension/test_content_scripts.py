"""End to end on PostgreSQL: what runs inside web pages cannot read the member's token."""

import pytest
from browser_harness import sign_in

pytestmark = pytest.mark.postgres_only

READ_STORAGE = """async (tabId) => {
    const [injected] = await chrome.scripting.executeScript({target: {tabId}, func: async () => {
        try {
            return {found: await chrome.storage.local.get(null)};
        } catch (error) {
            return {refused: String(error.message ?? error)};
        }
    }});
    return injected.result;
}"""


async def test_a_content_script_cannot_read_the_token(gateway, browser, member, site):
    await sign_in(browser, gateway, member)
    token = (await browser.storage())["local"]["auth"]["token"]
    _, tab_id = await browser.open(site.url("/articles/compost.html"))
    seen = await browser.run(READ_STORAGE, tab_id)
    assert "found" not in seen, "a content script read storage.local"
    assert token not in repr(seen)
    assert "refused" in seen
