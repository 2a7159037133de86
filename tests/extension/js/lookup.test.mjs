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

test("a gateway that could not be reached is asked again as soon as it answers", async () => {
  const { call, onGatewayBack } = await import("../../../extension/api.js");
  let back = 0;
  onGatewayBack(() => { back += 1; });
  browser.answerWith(() => "offline");
  const url = "https://example.com/d";
  assert.equal((await lookupThing(AUTH, url)).error.code, "offline");
  assert.equal((await lookupThing(AUTH, url)).error.code, "offline"); // not asked again at once
  assert.equal(browser.requests.length, 1);

  browser.answerWith(() => ({ status: 200, body: { key: "k", owner: null, flattred_by_me: false } }));
  await call(AUTH.gateway, "GET", "/me", { token: AUTH.token }); // any request that succeeds
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(back, 1);
  const found = await lookupThing(AUTH, url);
  assert.equal(found.error, null);
  assert.equal(browser.requests.length, 3);
});

test("the popup asks again after a failure to reach the gateway", async () => {
  browser.answerWith(() => "offline");
  const url = "https://example.com/e";
  await lookupThing(AUTH, url);
  browser.answerWith(() => ({ status: 200, body: { key: "k", owner: null, flattred_by_me: false } }));
  assert.equal((await lookupThing(AUTH, url, { retryFailures: true })).error, null);
});
