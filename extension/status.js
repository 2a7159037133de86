// Everything the popup shows about a tab, gathered in the worker (one place for caches and
// rate limits) and kept in storage.session so the next popup can show it at once.
import { ext } from "./browser.js";
import { gatewayAnsweredAt } from "./api.js";
import { automaticFlattrs } from "./attention.js";
import { badgeFor, showBadge } from "./badge.js";
import { settle } from "./flattring.js";
import { lookupThing, refreshMe, things } from "./lookup.js";
import { readPage } from "./page.js";
import { flush, pendingItems } from "./queue.js";
import { getAuth } from "./settings.js";
import { isWebUrl, pageUrl, withoutFragment } from "./urls.js";
import { viewKey, views } from "./views.js";

export async function statusOfTab(tabId) {
  const startedAt = Date.now();
  const auth = await getAuth();
  const tab = await ext.tabs.get(tabId);
  const page = isWebUrl(tab.url) ? await readPage(tabId) : null;
  const url = pageUrl(tab.url, page?.canonical);
  const view = {
    signedIn: Boolean(auth),
    handle: auth?.handle ?? null,
    gateway: auth?.gateway ?? null,
    tab: { id: tabId, url: tab.url ?? null },
    page: {
      url,
      title: page?.title || tab.title || url || "",
      account: page?.account ?? null,
      canonical: Boolean(page?.canonical) && url === withoutFragment(page.canonical),
    },
    // No URL at all: the popup was opened without access to the tab.
    problem: url ? null : { code: tab.url ? "invalid_url" : "no_access", status: 0 },
    thing: null, lookupError: null, me: null, meError: null, pending: null, automatic: null,
    failure: null, checkedAt: Date.now(),
  };
  if (!auth) return view;

  // The member is looking: a failure to reach the gateway is not taken from the cache.
  const [found, me] = await Promise.all([
    url ? lookupThing(auth, url, { retryFailures: true }) : null, refreshMe(auth),
  ]);
  // When the gateway just answered, what waited for it goes now, before the popup shows it
  // waiting; otherwise in the background (a slow or absent gateway must not hold the popup).
  const sending = sendDue(auth).catch(() => {});
  if (gatewayAnsweredAt() >= startedAt) await sending;
  view.signedIn = Boolean(await getAuth()); // a 401 on the way signs out
  view.thing = (url && (await things.get(url))?.thing) ?? found?.thing ?? null;
  view.lookupError = found?.error ?? null;
  view.me = me.data;
  view.meError = me.error;
  if (url) {
    view.pending = (await pendingItems()).find((item) => item.url === url) ?? null;
    view.automatic = (await automaticFlattrs())[url] ?? null;
    const { failures = [] } = await ext.storage.local.get("failures");
    view.failure = failures.find((failure) => failure.url === url) ?? null;
    await showBadge(tabId, badgeFor({ thing: view.thing, pending: Boolean(view.pending),
      signedIn: view.signedIn }));
  }
  if (viewKey(tab.url)) await views.set(viewKey(tab.url), view);
  return view;
}

/** Opening the popup is a good moment to send flattrs that wait (when they are due). */
async function sendDue(auth) {
  const results = await flush(auth);
  for (const result of results) await settle(auth, result, { fresh: false });
}

export async function sendQueued({ force = false } = {}) {
  const auth = await getAuth();
  if (!auth) return [];
  const results = await flush(auth, { force });
  const outcomes = [];
  for (const result of results) outcomes.push(await settle(auth, result, { fresh: false }));
  return outcomes;
}
