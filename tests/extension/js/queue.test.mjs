// The queue: an Idempotency-Key saved before the first request and reused on every retry.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { AUTH, installFakeBrowser } from "./fake-browser.mjs";

const browser = installFakeBrowser();
const { QUEUE_ALARM, flush, queuedItems, submit } = await import("../../../extension/queue.js");

const flattred = (request) => ({
  status: 201,
  body: { created: true, flattr: { id: 1, period: "2026-11",
    thing: { key: request.body.url, url: request.body.url, owner: null } } },
});
const request = { url: "https://example.com/post", source: "popup", tabId: 4 };

beforeEach(() => browser.reset());

test("offline: the flattr stays queued with its key, saved before it was sent", async () => {
  browser.answerWith(() => "offline");
  const result = await submit(AUTH, request);
  assert.equal(result.state, "pending");
  const [sent] = browser.requests;
  const key = sent.headers["Idempotency-Key"];
  assert.ok(key);
  assert.deepEqual(sent.storedQueue.map((item) => item.idempotencyKey), [key]);
  const [item] = await queuedItems();
  assert.equal(item.idempotencyKey, key);
  assert.equal(item.attempts, 1);
  assert.ok(item.nextAttemptAt >= Date.now() + 29_000);
  assert.ok(browser.alarms.get(QUEUE_ALARM));

  // Flattring the same page again does not make a second item or a second key.
  await submit(AUTH, request);
  assert.equal((await queuedItems()).length, 1);

  browser.answerWith(flattred);
  const [done] = await flush(AUTH, { force: true });
  assert.equal(done.state, "delivered");
  assert.deepEqual(new Set(browser.requests.map((r) => r.headers["Idempotency-Key"])), new Set([key]));
  assert.deepEqual(await queuedItems(), []);
  assert.equal(browser.alarms.get(QUEUE_ALARM), undefined);
});

test("429 waits at least Retry-After; 5xx waits; a refusal is dropped", async () => {
  browser.answerWith(() => ({ status: 429, headers: { "Retry-After": "600" },
    body: { error: { code: "rate_limited", message: "slow down" } } }));
  const limited = await submit(AUTH, request);
  assert.equal(limited.state, "pending");
  assert.ok(limited.item.nextAttemptAt >= Date.now() + 599_000);

  browser.answerWith(() => ({ status: 503, body: { error: { code: "database_unavailable", message: "" } } }));
  const [unavailable] = await flush(AUTH, { force: true });
  assert.equal(unavailable.state, "pending");
  assert.equal(unavailable.item.attempts, 2);

  browser.answerWith(() => ({ status: 403, body: { error: { code: "own_thing", message: "yours" } } }));
  const [refused] = await flush(AUTH, { force: true });
  assert.equal(refused.state, "failed");
  assert.equal(refused.error.code, "own_thing");
  assert.deepEqual(await queuedItems(), []);
});

test("items not yet due wait for the alarm; two senders at once send once", async () => {
  browser.answerWith(() => "offline");
  await submit(AUTH, request);
  browser.answerWith(flattred);
  assert.deepEqual(await flush(AUTH), []); // not due yet
  const before = browser.requests.length;
  const [first, second] = await Promise.all([flush(AUTH, { force: true }), flush(AUTH, { force: true })]);
  assert.equal(first.length + second.length, 1);
  assert.equal(browser.requests.length, before + 1);
});
