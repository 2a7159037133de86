import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { installFakeBrowser } from "./fake-browser.mjs";

const browser = installFakeBrowser();
const { DEFAULT_SETTINGS, getSettings, updateSettings } = await import("../../../extension/settings.js");

beforeEach(() => browser.reset());

test("defaults are read, never written", async () => {
  assert.deepEqual(await getSettings(), DEFAULT_SETTINGS);
  assert.deepEqual(await browser.fake.storage.local.get(null), {});
});

test("a setting written by someone else is never overwritten by defaults", async () => {
  await browser.fake.storage.local.set({ settings: { gateway: "https://elsewhere.example" } });
  await updateSettings({ showStatus: true });
  const settings = await getSettings();
  assert.equal(settings.gateway, "https://elsewhere.example");
  assert.equal(settings.showStatus, true);
  assert.deepEqual((await browser.fake.storage.local.get("settings")).settings,
    { gateway: "https://elsewhere.example", showStatus: true });
  await assert.rejects(updateSettings({ password: "x" }), /unknown settings/);
});
