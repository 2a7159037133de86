// The opt-in badge that follows each tab: debounced, cached a minute per URL, capped.
import assert from "node:assert/strict";
import { beforeEach, mock, test } from "node:test";

import { AUTH, installFakeBrowser, settle } from "./fake-browser.mjs";

const browser = installFakeBrowser();
mock.timers.enable({ apis: ["setTimeout"] }); // the debounce runs on a fake clock
const { DEBOUNCE_MS, onTabUpdated } = await import("../../../extension/tabwatch.js");

const thing = (url) => ({ key: url, url, owner: null, known: false, count_this_period: 0,
  count_total: 0, flattred_by_me: false, my_flattr_id: null });
const lookups = () => browser.requests.filter((r) => r.url.includes("/api/v1/things"));

async function optIn({ showStatus = true, tabs = true } = {}) {
  await browser.fake.storage.local.set({ auth: AUTH, settings: { showStatus } });
  if (tabs) browser.granted.permissions.add("tabs");
  browser.answerWith((request) => ({ status: 200, body: thing(new URL(request.url).searchParams.get("url")) }));
}

beforeEach(() => browser.reset());

async function afterDebounce() {
  mock.timers.tick(DEBOUNCE_MS);
  await settle();
}

test("a storm of URL changes in one tab costs one lookup, of the last URL", async () => {
  await optIn();
  for (let i = 0; i < 50; i += 1) {
    const url = `https://app.example.com/feed/${i}`;
    onTabUpdated(1, { url }, { id: 1, url });
  }
  await afterDebounce();
  assert.equal(lookups().length, 1);
  assert.equal(new URL(lookups()[0].url).searchParams.get("url"), "https://app.example.com/feed/49");
  assert.equal(browser.badges.get(1).text, "?");
});

test("a page whose address has a query is not looked up, and its badge is neutral", async () => {
  await optIn();
  const channel = "https://www.youtube.com/@someone";
  onTabUpdated(1, { url: channel }, { id: 1, url: channel });
  await afterDebounce();
  assert.equal(browser.badges.get(1).text, "?");
  // The page rewrites its address (history.pushState) to one with a query: the query
  // (a video, a session, search terms) never leaves the browser, and is not cut off either,
  // which would make every video the one page /watch.
  for (const url of ["https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://example.com/?",
    "https://example.com/search?q=secret#results"]) {
    onTabUpdated(1, { url }, { id: 1, url });
    await afterDebounce();
    assert.deepEqual(lookups().map((r) => new URL(r.url).searchParams.get("url")), [channel], url);
    assert.equal(browser.badges.get(1).text, "", url);
  }
  const plain = "https://www.youtube.com/@someone/about";
  onTabUpdated(1, { url: plain }, { id: 1, url: plain });
  await afterDebounce();
  assert.equal(lookups().length, 2);
  assert.equal(browser.badges.get(1).text, "?");
});

test("private addresses and sites on the never list are not looked up", async () => {
  await optIn();
  await browser.fake.storage.local.set({ settings: { showStatus: true, autoBlocklist: ["github.com"] } });
  const urls = [
    "http://localhost:3000/admin", "http://192.168.1.1/", "http://10.0.0.7/wiki",
    "http://[fd00::1]/", "https://nas.local/photos", "https://jira.corp.internal/browse/X-1",
    "http://intranet/", "https://github.com/me/private-repo", "https://gist.github.com/me/1",
  ];
  urls.forEach((url, index) => onTabUpdated(index + 10, { url }, { id: index + 10, url }));
  await afterDebounce();
  assert.deepEqual(lookups().map((r) => r.url), []);
  onTabUpdated(30, { url: "https://example.com/a" }, { id: 30, url: "https://example.com/a" });
  await afterDebounce();
  assert.equal(lookups().length, 1);
});

test("the same URL is asked about at most once a minute, from any tab", async () => {
  await optIn();
  const url = "https://example.com/article#part-2";
  onTabUpdated(1, { url }, { id: 1, url });
  onTabUpdated(2, { status: "complete" }, { id: 2, url: "https://example.com/article" });
  await afterDebounce();
  onTabUpdated(1, { status: "complete" }, { id: 1, url });
  await afterDebounce();
  assert.equal(lookups().length, 1);
  assert.equal(browser.badges.get(2).text, "?");
});

test("nothing is sent unless the member opted in and granted the permission", async () => {
  await optIn({ showStatus: false });
  onTabUpdated(1, { url: "https://example.com/a" }, { id: 1, url: "https://example.com/a" });
  await afterDebounce();
  await browser.reset();
  await optIn({ showStatus: true, tabs: false });
  onTabUpdated(2, { url: "https://example.com/b" }, { id: 2, url: "https://example.com/b" });
  await afterDebounce();
  await browser.reset();
  await optIn();
  onTabUpdated(3, { url: "chrome://settings" }, { id: 3, url: "chrome://settings" });
  onTabUpdated(4, { url: "https://example.com/c" }, { id: 4, url: "https://example.com/c", incognito: true });
  onTabUpdated(5, { title: "a new title" }, { id: 5, url: "https://example.com/d" });
  await afterDebounce();
  assert.equal(lookups().length, 0);
});
