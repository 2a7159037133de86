// Opt-in ("Show each page's Flattr status"): the badge follows each tab's page. This sends
// the address of every visited web page to the gateway, so it is off unless the member turns
// it on (which also asks for the "tabs" permission). Lookups are debounced per tab, cached
// a minute per URL (lookup.js), and capped overall, so a page rewriting its URL in a loop
// (history.pushState storms) costs at most a few requests. Private addresses (localhost,
// the home or company network), sites on the never list and addresses with a query are not
// looked up at all: their badge is neutral.
import { badgeFor, showBadge } from "./badge.js";
import { lookupThing } from "./lookup.js";
import { hasTabs } from "./permissions.js";
import { pendingItems } from "./queue.js";
import { getAuth, getSettings } from "./settings.js";
import { hasQuery, hostBlocked, isPrivateUrl, isWebUrl, withoutFragment } from "./urls.js";

export const DEBOUNCE_MS = 800;
export const MAX_LOOKUPS_PER_MINUTE = 30;
const timers = new Map();
const recentLookups = [];

export function onTabUpdated(tabId, changeInfo, tab) {
  if (!changeInfo.url && changeInfo.status !== "complete") return;
  if (tab?.incognito) return;
  clearTimeout(timers.get(tabId));
  timers.set(tabId, setTimeout(() => {
    timers.delete(tabId);
    updateTab(tabId, tab?.url).catch(() => {});
  }, DEBOUNCE_MS));
}

export function onTabRemoved(tabId) {
  clearTimeout(timers.get(tabId));
  timers.delete(tabId);
}

function withinBudget(now = Date.now()) {
  while (recentLookups.length && now - recentLookups[0] > 60_000) recentLookups.shift();
  if (recentLookups.length >= MAX_LOOKUPS_PER_MINUTE) return false;
  recentLookups.push(now);
  return true;
}

async function updateTab(tabId, tabUrl) {
  const [settings, auth, allowed] = await Promise.all([getSettings(), getAuth(), hasTabs()]);
  if (!settings.showStatus || !auth || !allowed || !isWebUrl(tabUrl)) return;
  if (isPrivateUrl(tabUrl) || hostBlocked(tabUrl, settings.autoBlocklist) || hasQuery(tabUrl)) {
    // Not the previous page's status: a single-page app keeps the badge of the last address.
    await showBadge(tabId, "none");
    return;
  }
  if (!withinBudget()) return;
  const url = withoutFragment(tabUrl);
  const found = await lookupThing(auth, url);
  const pending = (await pendingItems()).some((item) => item.url === url);
  await showBadge(tabId, badgeFor({ thing: found.thing, pending }));
}
