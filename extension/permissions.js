// Optional permissions, asked for only when the member turns on what needs them, and the
// attention content script, registered only while automatic flattring is on.
import { ext } from "./browser.js";
import { getAuth, getSettings } from "./settings.js";
import { hostPatterns } from "./urls.js";

export const PAGE_ORIGINS = ["http://*/*", "https://*/*"];
export const AUTOMATIC_PERMISSIONS = { origins: PAGE_ORIGINS, permissions: ["idle"] };
export const STATUS_PERMISSIONS = { permissions: ["tabs"] };
export const ATTENTION_SCRIPT_ID = "flattr-attention";

export function hasPageAccess() {
  return ext.permissions.contains({ origins: PAGE_ORIGINS });
}

export function hasTabs() {
  return ext.permissions.contains(STATUS_PERMISSIONS);
}

export async function hasIdle() {
  return ext.permissions.contains({ permissions: ["idle"] });
}

let syncing = Promise.resolve();

/** Register the attention script when automatic flattring is on and allowed, else remove it. */
export function syncAttentionScript() {
  syncing = syncing.then(syncNow, syncNow);
  return syncing;
}

function sameList(a = [], b = []) {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

async function syncNow() {
  const [settings, auth, access] = await Promise.all([getSettings(), getAuth(), hasPageAccess()]);
  const wanted = settings.autoFlattr && Boolean(auth) && access;
  const [registered] = await ext.scripting.getRegisteredContentScripts({ ids: [ATTENTION_SCRIPT_ID] });
  const excluded = settings.autoBlocklist.flatMap(hostPatterns);
  // The worker starts often: leave a registration that is already right alone.
  if (wanted && registered && sameList(registered.excludeMatches, excluded)) return true;
  if (registered) await ext.scripting.unregisterContentScripts({ ids: [ATTENTION_SCRIPT_ID] });
  if (!wanted) return false;
  const script = {
    id: ATTENTION_SCRIPT_ID,
    js: ["content/attention.js"],
    matches: PAGE_ORIGINS,
    runAt: "document_idle",
    allFrames: false,
    persistAcrossSessions: true,
  };
  if (excluded.length) script.excludeMatches = excluded;
  await ext.scripting.registerContentScripts([script]);
  return true;
}
