// Firefox for Android has no context menus and no keyboard shortcuts: the worker starts
// all the same, with everything else in place.
import assert from "node:assert/strict";
import { test } from "node:test";

import { installFakeBrowser } from "./fake-browser.mjs";

const browser = installFakeBrowser();
delete browser.fake.contextMenus;
delete browser.fake.commands;

test("the worker starts without contextMenus and commands", async () => {
  await import("../../../extension/background.js");
  await globalThis.flattr.ready;
  assert.equal(browser.fake.runtime.onMessage.listeners.length, 1);
  assert.equal(browser.fake.alarms.onAlarm.listeners.length, 1);
});
