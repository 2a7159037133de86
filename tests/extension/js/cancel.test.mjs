// Cancelling a queued flattr never leaves the member with the flattr they cancelled, even
// when the cancel meets a send already under way or an attempt whose answer was lost.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { AUTH, installFakeBrowser, settle } from "./fake-browser.mjs";

const browser = installFakeBrowser();
const { flush, queuedItems, submit } = await import("../../../extension/queue.js");
const { takeBack } = await import("../../../extension/flattring.js");

const URL_ = "https://example.com/post";
const made = (id, created = true) => ({
  status: created ? 201 : 200,
  body: { created, flattr: { id, period: "2026-11", thing: { key: URL_, url: URL_, owner: null } } },
});
const posts = () => browser.requests.filter((r) => r.method === "POST");
const deletes = () => browser.requests.filter((r) => r.method === "DELETE").map((r) => new URL(r.url).pathname);

/** A gateway whose answers to POST /flattrs wait until released. */
function slowGateway() {
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  browser.answerWith(async (request) => {
    if (request.method === "POST") return held;
    if (request.method === "DELETE") return { status: 200, body: { taken_back: { id: 42 } } };
    return { status: 200, body: {} };
  });
  return { release: () => release(made(42)) };
}

beforeEach(async () => {
  await browser.reset();
  await browser.fake.storage.local.set({ auth: AUTH });
});

test("a cancel that arrives while the send is in flight takes the flattr back", async () => {
  const gateway = slowGateway();
  const sending = submit(AUTH, { url: URL_, source: "popup", tabId: 3 });
  await settle();
  assert.equal(posts().length, 1); // the request is on its way
  const [waiting] = await queuedItems(); // what the popup shows, with its Cancel button
  const cancelling = takeBack({ url: URL_, itemId: waiting.id, tabId: 3 });
  await settle();
  gateway.release();
  const [sent, cancelled] = await Promise.all([sending, cancelling]);
  assert.equal(sent.state, "delivered");
  assert.equal(cancelled.state, "cancelled");
  assert.equal(cancelled.withdrawn, "withdrawn");
  assert.deepEqual(deletes(), ["/api/v1/flattrs/42"]);
  assert.deepEqual(await queuedItems(), []);
});

test("a cancel just after the send finished also takes it back, once", async () => {
  browser.answerWith((request) => (request.method === "POST" ? made(7) : { status: 200, body: {} }));
  await submit(AUTH, { url: URL_, source: "popup" });
  const [waiting] = posts()[0].storedQueue; // what a popup opened meanwhile showed waiting
  assert.deepEqual(await queuedItems(), []); // sent before the member clicked Cancel
  const cancelled = await takeBack({ url: URL_, itemId: waiting.id });
  assert.equal(cancelled.withdrawn, "withdrawn");
  assert.deepEqual(deletes(), ["/api/v1/flattrs/7"]);
  await takeBack({ url: URL_, itemId: waiting.id }); // a second click changes nothing
  assert.deepEqual(deletes(), ["/api/v1/flattrs/7"]);
});

test("never sent: cancelled without a request", async () => {
  browser.answerWith((request) => (request.method === "POST"
    ? { status: 503, body: { error: { code: "database_unavailable", message: "" } } }
    : { status: 200, body: {} }));
  await submit(AUTH, { url: URL_, source: "popup" }); // the gateway answered: nothing made
  const before = browser.requests.length;
  const cancelled = await takeBack({ url: URL_ });
  assert.equal(cancelled.withdrawn, "cancelled");
  assert.equal(posts().length, 1);
  assert.deepEqual(deletes(), []);
  assert.ok(browser.requests.slice(before).every((r) => r.method === "GET"));
  assert.deepEqual(await queuedItems(), []);
});

test("an attempt without an answer may have made the flattr: it is taken back later", async () => {
  browser.answerWith(() => "offline");
  await submit(AUTH, { url: URL_, source: "popup" });
  const cancelled = await takeBack({ url: URL_ });
  assert.equal(cancelled.withdrawn, "withdrawing");
  const [left] = await queuedItems();
  assert.equal(left.withdraw, true);

  // The gateway is back and had made the flattr: the same key replays it, then it goes.
  browser.answerWith((request) => (request.method === "POST" ? made(9) : { status: 200, body: {} }));
  const [done] = await flush(AUTH, { force: true });
  assert.equal(done.state, "withdrawn");
  const keys = new Set(posts().map((r) => r.headers["Idempotency-Key"]));
  assert.equal(keys.size, 1);
  assert.deepEqual(deletes(), ["/api/v1/flattrs/9"]);
  assert.deepEqual(await queuedItems(), []);
});

test("a flattr that was there before the cancelled request is left alone", async () => {
  browser.answerWith(() => "offline");
  await submit(AUTH, { url: URL_, source: "popup" });
  await takeBack({ url: URL_ });
  browser.answerWith((request) => (request.method === "POST" ? made(5, false) : { status: 200, body: {} }));
  const [done] = await flush(AUTH, { force: true });
  assert.equal(done.state, "withdrawn");
  assert.deepEqual(deletes(), []);
  assert.deepEqual(await queuedItems(), []);
});

test("automatic flattrs say so; the others are the extension's", async () => {
  browser.answerWith(() => made(1));
  await submit(AUTH, { url: URL_, source: "automatic" });
  await submit(AUTH, { url: "https://example.com/other", source: "popup" });
  assert.deepEqual(posts().map((r) => r.body.source), ["automatic", "extension"]);
});
