// Page lookups: one request per URL per minute, failures included; callers share a request.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { AUTH, installFakeBrowser } from "./fake-browser.mjs";

const browser = installFakeBrowser();
const { lookupThing } = await import("../../../extension/lookup.js");

beforeEach(() => browser.reset());

test("concurrent and repeated lookups of a URL make one request a minute", async () => {
  browser.answerWith(() => ({ status: 200, body: { key: "k", owner: "alice", flattred_by_me: false } }));
  const url = "https://example.com/a";
  const found = await Promise.all([lookupThing(AUTH, url), lookupThing(AUTH, url), lookupThing(AUTH, url)]);
  assert.equal(browser.requests.length, 1);
  assert.ok(found.every((entry) => entry.thing.owner === "alice"));
  await lookupThing(AUTH, url);
  assert.equal(browser.requests.length, 1);
  assert.equal(browser.requests[0].headers.Authorization, "Bearer secret-token");
});

test("a failed lookup also counts against the minute", async () => {
  browser.answerWith(() => "offline");
  const url = "https://example.com/b";
  const first = await lookupThing(AUTH, url);
  assert.equal(first.error.code, "offline");
  await lookupThing(AUTH, url);
  assert.equal(browser.requests.length, 1);
});

test("a 401 forgets the token", async () => {
  await browser.fake.storage.local.set({ auth: AUTH, queue: [] });
  browser.answerWith(() => ({ status: 401, body: { error: { code: "unauthorized", message: "" } } }));
  const found = await lookupThing(AUTH, "https://example.com/c");
  assert.equal(found.error.code, "unauthorized");
  assert.deepEqual(await browser.fake.storage.local.get(null), {});
});
