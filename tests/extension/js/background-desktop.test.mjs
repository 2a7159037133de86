// On desktop browsers the worker adds "Flattr this link" and listens for the shortcut, and
// keeps storage.local (the token) away from content scripts where the browser allows it.
import assert from "node:assert/strict";
import { test } from "node:test";

import { installFakeBrowser } from "./fake-browser.mjs";

const browser = installFakeBrowser();
const levels = [];
browser.fake.storage.local.setAccessLevel = async (options) => { levels.push(options); };

test("the worker adds the link menu, the shortcut, and protects storage.local", async () => {
  await import("../../../extension/background.js");
  await globalThis.flattr.ready;
  assert.deepEqual(browser.fake.contextMenus.items.map((item) => item.id), ["flattr-link"]);
  assert.equal(browser.fake.commands.onCommand.listeners.length, 1);
  assert.deepEqual(levels, [{ accessLevel: "TRUSTED_CONTEXTS" }]);
});
