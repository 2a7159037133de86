// The opt-in badge lookups stay under a cap per minute, however many tabs change at once.
// (A file of its own: the cap counts every lookup the module made in this process.)
import assert from "node:assert/strict";
import { mock, test } from "node:test";

import { AUTH, installFakeBrowser, settle } from "./fake-browser.mjs";

const browser = installFakeBrowser();
mock.timers.enable({ apis: ["setTimeout"] }); // the debounce runs on a fake clock
const { DEBOUNCE_MS, MAX_LOOKUPS_PER_MINUTE, onTabUpdated } = await import("../../../extension/tabwatch.js");

async function afterDebounce() {
  mock.timers.tick(DEBOUNCE_MS);
  await settle();
}

test("many tabs on many URLs stay under a cap per minute", async () => {
  await browser.fake.storage.local.set({ auth: AUTH, settings: { showStatus: true } });
  browser.granted.permissions.add("tabs");
  browser.answerWith(() => ({ status: 200, body: { owner: null, flattred_by_me: false } }));
  for (let tab = 1; tab <= MAX_LOOKUPS_PER_MINUTE + 10; tab += 1) {
    const url = `https://example.com/page/${tab}`;
    onTabUpdated(tab, { url }, { id: tab, url });
  }
  await afterDebounce();
  assert.equal(browser.requests.length, MAX_LOOKUPS_PER_MINUTE);
});
