// A card top-up from the worker: the amount as typed, one Idempotency-Key per top-up, and
// only an https Checkout page is ever opened, whatever the answer names.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { AUTH, installFakeBrowser } from "./fake-browser.mjs";

const browser = installFakeBrowser();
const { amountText, quoteTopUp, startTopUp } = await import("../../../extension/topup.js");

const opened = (checkoutUrl) => ({
  status: 201,
  body: { checkout_url: checkoutUrl, session_id: "cs_1", amount: "10.00", fee_estimate: "0.41",
    total: "10.41" },
});

beforeEach(async () => {
  await browser.reset();
  await browser.fake.storage.local.set({ auth: AUTH });
});

test("an amount typed with a decimal comma is sent with a point", async () => {
  assert.equal(amountText(" 25,50 "), "25.50");
  browser.answerWith(() => ({ status: 200, body: { amount: "25.50" } }));
  await quoteTopUp("25,50");
  const [asked] = browser.requests;
  assert.equal(new URL(asked.url).pathname, "/api/v1/fundings/quote");
  assert.equal(new URL(asked.url).searchParams.get("amount"), "25.50");
  assert.equal(asked.headers.Authorization, `Bearer ${AUTH.token}`);
});

test("the Checkout page opens in a new tab, the same key sent on a retry", async () => {
  browser.answerWith(() => opened("https://checkout.stripe.com/c/pay/cs_1"));
  const first = await startTopUp("10", "key-1");
  await startTopUp("10", "key-1");
  assert.deepEqual(browser.requests.map((r) => [r.method, r.body, r.headers["Idempotency-Key"]]),
    [["POST", { amount: "10" }, "key-1"], ["POST", { amount: "10" }, "key-1"]]);
  assert.equal(first.tabId, 1000);
  assert.deepEqual([...browser.tabs.values()].map((tab) => tab.url),
    ["https://checkout.stripe.com/c/pay/cs_1", "https://checkout.stripe.com/c/pay/cs_1"]);
});

test("no tab for an answer that names no https page", async () => {
  for (const url of ["javascript:alert(1)", "http://checkout.example/pay", "", null]) {
    browser.answerWith(() => opened(url));
    await assert.rejects(startTopUp("10"), { code: "invalid_checkout" });
  }
  assert.equal(browser.tabs.size, 0);
});

test("the gateway's refusal comes back with its code and words, and no tab", async () => {
  browser.answerWith(() => ({
    status: 409,
    body: { error: { code: "funding_unavailable", message: "card funding is not configured" } },
  }));
  await assert.rejects(startTopUp("10"), { code: "funding_unavailable",
    message: "card funding is not configured" });
  assert.equal(browser.tabs.size, 0);
});

test("signed out, nothing is asked", async () => {
  await browser.fake.storage.local.clear();
  await assert.rejects(quoteTopUp("10"), { code: "not_signed_in" });
  assert.equal(browser.requests.length, 0);
});
