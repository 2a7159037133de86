// The member's actions: flattr a page or a link, take a flattr back. Each updates the cached
// page status and the tab's badge, so the popup and the badge agree.
import { ext } from "./browser.js";
import { call, errorJson } from "./api.js";
import { forgetToken } from "./auth.js";
import { BADGES, badgeFor, flash, showBadge } from "./badge.js";
import { rememberThing, refreshMe, things } from "./lookup.js";
import { describe } from "./messages.js";
import { readPage } from "./page.js";
import { cancel, submit, withQueueLock } from "./queue.js";
import { getAuth } from "./settings.js";
import { isWebUrl, pageUrl, withoutFragment } from "./urls.js";

export function currentPeriod(now = new Date()) {
  return now.toISOString().slice(0, 7); // the gateway's months are UTC months
}

function notSignedIn() {
  return { state: "error", error: { code: "not_signed_in", message: "not signed in", status: 0 } };
}

/**
 * Flattr a URL: {state: "flattred", flattr, created} | {state: "pending", item, error}
 * | {state: "error", error}. Never throws for what the gateway answers.
 */
export async function flattrUrl({ url, title = null, source, tabId = null, tabUrl = null }) {
  const auth = await getAuth();
  if (!auth) return notSignedIn();
  if (!isWebUrl(url)) {
    const error = { code: "invalid_url", message: "not an http(s) URL", status: 0 };
    await showBadge(tabId, "error", describe(error));
    return { state: "error", error };
  }
  let result;
  try {
    result = await submit(auth, { url: withoutFragment(url), title, source, tabId, tabUrl });
  } catch (error) {
    return { state: "error", error: errorJson(error) };
  }
  return settle(auth, result, { fresh: true });
}

/** What a sent (or re-sent) queue item means for caches, badge and the member. */
export async function settle(auth, result, { fresh }) {
  const { item } = result;
  if (result.state === "delivered") {
    const { created, flattr } = result.answer.data;
    await rememberThing(item.url, (thing) => flattredThing(thing, flattr, created));
    await forgetFailure(item.url);
    await badgeForItem(item, "flattred", fresh);
    await refreshMe(auth, { force: true });
    return { state: "flattred", flattr, created, replayed: result.answer.replayed, url: item.url };
  }
  if (result.state === "pending") {
    await badgeForItem(item, "pending", fresh, describe(result.error));
    return { state: "pending", item, error: errorJson(result.error), url: item.url };
  }
  if (result.state === "withdrawn") {
    await things.remove(item.url); // looked up afresh next time
    return { state: "withdrawn", url: item.url };
  }
  const error = errorJson(result.error);
  if (error.code === "unauthorized") await forgetToken();
  if (error.code === "own_thing") {
    // The gateway just told us whose page it is, even if its lookup did not.
    await rememberThing(item.url, (thing) => ({
      ...(thing ?? { url: item.url, count_this_period: 0, count_total: 0 }),
      owner: auth.handle, flattred_by_me: false, my_flattr_id: null,
    }));
  }
  await badgeForItem(item, "error", fresh, describe(error));
  if (!fresh) await rememberFailure(item, error);
  return { state: "error", error, url: item.url };
}

function flattredThing(thing, flattr, created) {
  const known = thing ?? { key: flattr.thing.key, url: flattr.thing.url, count_this_period: 0,
    count_total: 0 };
  return {
    ...known,
    key: flattr.thing.key,
    owner: flattr.thing.owner,
    known: true,
    flattred_by_me: true,
    my_flattr_id: flattr.id,
    count_this_period: known.count_this_period + (created ? 1 : 0),
    count_total: known.count_total + (created ? 1 : 0),
  };
}

// A queued flattr sent later may find its tab on another page: only badge the tab when it
// still shows the page the flattr was made on.
async function badgeForItem(item, name, fresh, detail = "") {
  if (item.tabId === null) return;
  if (!fresh) {
    const tab = await ext.tabs.get(item.tabId).catch(() => null);
    if (!tab?.url || !item.tabUrl || withoutFragment(tab.url) !== withoutFragment(item.tabUrl)) {
      return;
    }
  }
  await showBadge(item.tabId, name, detail);
}

// A queued flattr the gateway refused later (e.g. own_thing): the popup tells it once the
// member looks at that page again. The last ten are kept.
async function rememberFailure(item, error) {
  const { failures = [] } = await ext.storage.local.get("failures");
  const entry = { url: item.url, error, at: Date.now() };
  const others = failures.filter((failure) => failure.url !== item.url);
  await ext.storage.local.set({ failures: [entry, ...others].slice(0, 10) });
}

async function forgetFailure(url) {
  const { failures = [] } = await ext.storage.local.get("failures");
  if (failures.some((failure) => failure.url === url)) {
    await ext.storage.local.set({ failures: failures.filter((failure) => failure.url !== url) });
  }
}

/**
 * Take a flattr back, or cancel it when it waits to be sent (`itemId`: the queued flattr the
 * member saw waiting; when it was sent meanwhile, the flattr it made is taken back).
 */
export async function takeBack({ url, flattrId = null, tabId = null, itemId = null }) {
  const auth = await getAuth();
  if (!auth) return notSignedIn();
  const cancelled = await cancel(auth, url, itemId);
  if (cancelled.state !== "none") {
    // It may have been flattred meanwhile: the page is looked up afresh next time.
    if (cancelled.state !== "cancelled") await things.remove(url);
    await forgetAutomatic(url);
    await showBadge(tabId, "none");
    if (cancelled.state !== "cancelled") await refreshMe(auth, { force: true });
    return { state: "cancelled", url, withdrawn: cancelled.state };
  }
  if (!Number.isSafeInteger(flattrId) || flattrId < 1) {
    return { state: "error", error: { code: "not_found", message: "no flattr id", status: 0 }, url };
  }
  try {
    await withQueueLock(() => call(auth.gateway, "DELETE", `/flattrs/${flattrId}`, {
      token: auth.token,
    }));
  } catch (caught) {
    const error = errorJson(caught);
    if (error.code === "unauthorized") await forgetToken();
    if (error.code !== "not_found") return { state: "error", error, url };
  }
  const after = await untakeThing(url);
  await forgetAutomatic(url);
  await showBadge(tabId, badgeFor({ thing: after }));
  await refreshMe(auth, { force: true });
  return { state: "taken-back", url };
}

/** The cached page after its flattr was taken back. */
async function untakeThing(url) {
  let after = null;
  await rememberThing(url, (thing) => {
    if (!thing?.flattred_by_me) {
      after = thing;
      return after;
    }
    after = {
      ...thing, flattred_by_me: false, my_flattr_id: null,
      count_this_period: Math.max(0, thing.count_this_period - 1),
      count_total: Math.max(0, thing.count_total - 1),
    };
    return after;
  });
  return after;
}

/** A page taken back is never flattred automatically again that month. */
async function forgetAutomatic(url) {
  const { automatic = {}, autoSkip = {} } = await ext.storage.local.get(["automatic", "autoSkip"]);
  delete automatic[url];
  const period = currentPeriod();
  const kept = Object.fromEntries(Object.entries(autoSkip).filter(([, p]) => p === period));
  kept[url] = period;
  await ext.storage.local.set({ automatic, autoSkip: kept });
}

/** The context menu's "Flattr this link". */
export async function flattrLink(info, tab) {
  const outcome = await flattrUrl({ url: info.linkUrl, source: "link" });
  const tabId = tab?.id ?? null;
  if (outcome.state === "flattred") {
    await flash(tabId, "+1", BADGES.flattred.color, `flattred ${info.linkUrl}`);
  } else if (outcome.state === "pending") {
    await flash(tabId, "…", BADGES.pending.color, "the flattr of that link waits to be sent");
  } else {
    await flash(tabId, "!", BADGES.error.color, describe(outcome.error), 5000);
  }
  return outcome;
}

/** The keyboard shortcut: flattr the page in the current tab; the badge confirms. */
export async function flattrTab(tab) {
  const target = tab ?? (await ext.tabs.query({ active: true, currentWindow: true }))[0];
  if (!target) return { state: "error", error: { code: "no_access", message: "no tab", status: 0 } };
  const page = isWebUrl(target.url) ? await readPage(target.id) : null;
  const url = pageUrl(target.url, page?.canonical);
  if (!url) {
    const error = { code: target.url ? "invalid_url" : "no_access", message: "", status: 0 };
    await showBadge(target.id, "error", describe(error));
    return { state: "error", error };
  }
  return flattrUrl({
    url, title: page?.title ?? target.title ?? null, source: "shortcut", tabId: target.id,
    tabUrl: target.url,
  });
}
