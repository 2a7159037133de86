// Automatic flattring: attention is measured on the page by content/attention.js and added
// up here, per URL and month, in memory (storage.session). Only a page that crosses the
// threshold leaves the browser, as one flattr, once a month; never an address with a query
// (the page's own, or its canonical URL when that is used), nor one inside the member's
// machine or network, nor a site on the never list.
//
// Thresholds follow the 2017 extension: 50 s of attention for a text page; a page that
// played sound for 20 s in a row is audio, and waits for 140 s.
import { ext } from "./browser.js";
import { SessionCache } from "./cache.js";
import { currentPeriod, flattrUrl } from "./flattring.js";
import { things } from "./lookup.js";
import { hasIdle } from "./permissions.js";
import { getAuth, getSettings } from "./settings.js";
import { hasQuery, hostBlocked, isPrivateUrl, isWebUrl, pageUrl } from "./urls.js";

export const TEXT_THRESHOLD_MS = 50_000;
export const AUDIO_THRESHOLD_MS = 140_000;
export const MAX_REPORT_MS = 30_000; // a report covers at most a few 15-second windows
export const IDLE_SECONDS = 60;
export const pages = new SessionCache("attention:", 300);

let chain = Promise.resolve();

/** Count a report from the attention script; flattr when the page crosses its threshold. */
export function recordAttention(report, sender) {
  const run = chain.then(() => count(report, sender));
  chain = run.catch(() => {});
  return run;
}

async function count(report, sender) {
  const settings = await getSettings();
  if (!settings.autoFlattr) return { counted: false, reason: "automatic flattring is off" };
  if (!sender?.tab || sender.tab.incognito || sender.frameId !== 0) {
    return { counted: false, reason: "not the top frame of a normal tab" };
  }
  const auth = await getAuth();
  if (!auth) return { counted: false, reason: "signed out" };
  const tabUrl = addressOf(report, sender);
  const url = pageUrl(tabUrl, report?.canonical);
  const refused = refusedAddress(tabUrl, url, settings.autoBlocklist);
  if (refused) return { counted: false, reason: refused };
  const milliseconds = Math.min(Math.max(Number(report?.ms) || 0, 0), MAX_REPORT_MS);
  if (!milliseconds) return { counted: false, reason: "nothing to count" };
  if (report.kind === "media" && (await idle())) return { counted: false, reason: "idle" };

  const period = currentPeriod();
  const previous = await pages.get(url);
  const page = previous?.period === period ? previous : { ms: 0, audio: false, done: false, period };
  if (page.done) return { counted: false, reason: "already flattred this month", ms: page.ms };
  page.ms += milliseconds;
  page.audio = page.audio || report.audio === true;
  const threshold = page.audio ? AUDIO_THRESHOLD_MS : TEXT_THRESHOLD_MS;
  if (page.ms < threshold) {
    await pages.set(url, page);
    return { counted: true, ms: page.ms, threshold };
  }
  page.done = true;
  await pages.set(url, page);
  const why = await reasonNotToFlattr(url, period, settings, report);
  if (why) return { counted: true, ms: page.ms, flattred: false, reason: why };

  const outcome = await flattrUrl({
    url, title: typeof report.title === "string" ? report.title.slice(0, 300) : null,
    source: "automatic", tabId: sender.tab.id, tabUrl,
  });
  if (outcome.state === "pending" || (outcome.state === "flattred" && outcome.created)) {
    const { automatic = {} } = await ext.storage.local.get("automatic");
    const kept = Object.fromEntries(Object.entries(automatic).filter(([, a]) => a.period === period));
    kept[url] = { period, at: Date.now(), attentionMs: page.ms, flattrId: outcome.flattr?.id ?? null };
    await ext.storage.local.set({ automatic: kept });
  }
  return { counted: true, ms: page.ms, flattred: outcome.state !== "error", outcome };
}

/**
 * The address the attention was paid at, as the page's script saw it: the sender's URL is
 * the document's first address, which a single-page app rewrites (history.pushState), but
 * only within its origin.
 */
function addressOf(report, sender) {
  const documentUrl = sender.url ?? sender.tab.url;
  if (!isWebUrl(report?.url) || !isWebUrl(documentUrl)) return documentUrl;
  return new URL(report.url).origin === new URL(documentUrl).origin ? report.url : documentUrl;
}

/** Why a page is not counted at all, whatever its canonical link says; or null. */
function refusedAddress(tabUrl, address, blocklist) {
  if (!address) return "not a web page";
  if (isPrivateUrl(tabUrl) || isPrivateUrl(address)) return "private address";
  if (hostBlocked(tabUrl, blocklist) || hostBlocked(address, blocklist)) return "blocked site";
  if (hasQuery(address)) return "address with a query";
  return null;
}

async function reasonNotToFlattr(url, period, settings, report) {
  const { autoSkip = {} } = await ext.storage.local.get("autoSkip");
  if (autoSkip[url] === period) return "taken back this month";
  const cached = await things.get(url);
  if (cached?.thing?.flattred_by_me) return "already flattred";
  if (settings.autoOnlyDeclared && !report.declared && !cached?.thing?.owner) {
    return "the page names no creator";
  }
  return null;
}

async function idle() {
  if (!ext.idle || !(await hasIdle())) return false; // no idle API on Firefox for Android
  return (await ext.idle.queryState(IDLE_SECONDS)) !== "active";
}

/** This month's automatic flattrs, by URL. */
export async function automaticFlattrs() {
  const { automatic = {} } = await ext.storage.local.get("automatic");
  const period = currentPeriod();
  return Object.fromEntries(Object.entries(automatic).filter(([, a]) => a.period === period));
}
