// What the member chose, and who they are signed in as.
//
// Defaults live here, in code, and are never written to storage: storage holds only what the
// member changed. Nothing can overwrite a setting someone else wrote a moment before (the
// onInstalled race), and reading always gives a complete settings object.
import { ext } from "./browser.js";

export const DEFAULT_GATEWAY = "http://127.0.0.1:8080";
export const MAX_BLOCKLIST_ENTRIES = 500;

export const DEFAULT_SETTINGS = Object.freeze({
  gateway: DEFAULT_GATEWAY,
  // Look up each visited page's status for the badge (sends visited URLs; needs "tabs").
  showStatus: false,
  // Flattr pages that held the member's attention long enough (needs host access).
  autoFlattr: false,
  // Only automatically flattr pages that name a creator or have a known owner.
  autoOnlyDeclared: false,
  // Hosts never flattred automatically (a host covers its subdomains).
  autoBlocklist: [],
});

export async function getSettings() {
  const { settings } = await ext.storage.local.get("settings");
  return { ...DEFAULT_SETTINGS, ...(settings ?? {}) };
}

/** Store only the given keys beside the ones the member set before. */
export async function updateSettings(changes) {
  const unknown = Object.keys(changes).filter((key) => !(key in DEFAULT_SETTINGS));
  if (unknown.length) throw new Error(`unknown settings: ${unknown.join(", ")}`);
  const { settings } = await ext.storage.local.get("settings");
  const updated = { ...(settings ?? {}), ...changes };
  await ext.storage.local.set({ settings: updated });
  return { ...DEFAULT_SETTINGS, ...updated };
}

/** {gateway, token, tokenId, handle, scopes, signedInAt} or null. Never a password. */
export async function getAuth() {
  const { auth } = await ext.storage.local.get("auth");
  return auth?.token ? auth : null;
}

export async function setAuth(auth) {
  await ext.storage.local.set({ auth });
}

export async function clearAuth() {
  await ext.storage.local.remove("auth");
}
