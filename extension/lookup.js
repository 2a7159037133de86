// What the gateway knows about a page (GET /things) and about the member's month (GET /me),
// cached so that a URL is asked about at most once a minute, whoever asks.
import { ext } from "./browser.js";
import { call, errorJson, gatewayAnsweredAt, isTransient } from "./api.js";
import { forgetToken } from "./auth.js";
import { SessionCache } from "./cache.js";

export const LOOKUP_INTERVAL_MS = 60_000;
export const ME_INTERVAL_MS = 5_000;
// An unreachable gateway is asked again this soon, or at once when it answered meanwhile.
export const FAILURE_INTERVAL_MS = 5_000;
export const things = new SessionCache("thing:", 500);
const inFlight = new Map();

/** Whether a cached answer may still be shown. */
export function stillFresh(cached, now = Date.now()) {
  if (!cached) return false;
  if (!isTransient(cached.error)) return now - cached.checkedAt < LOOKUP_INTERVAL_MS;
  return now - cached.checkedAt < FAILURE_INTERVAL_MS && gatewayAnsweredAt() < cached.checkedAt;
}

/**
 * {thing, checkedAt, error}: the cached answer when younger than a minute, else a fresh one.
 * A failure to reach the gateway is kept only a few seconds, and not once it answered again;
 * `retryFailures` (the member opened the popup) asks again after any such failure.
 */
export async function lookupThing(auth, url, { retryFailures = false } = {}) {
  const cached = await things.get(url);
  const retry = retryFailures && isTransient(cached?.error);
  if (!retry && stillFresh(cached)) return cached;
  let pending = inFlight.get(url);
  if (!pending) {
    pending = askGateway(auth, url, cached).finally(() => inFlight.delete(url));
    inFlight.set(url, pending);
  }
  return pending;
}

async function askGateway(auth, url, previous) {
  const checkedAt = Date.now();
  // The attempt counts against the minute even if it fails or the worker stops meanwhile.
  await things.set(url, { thing: previous?.thing ?? null, checkedAt, error: null });
  try {
    const { data } = await call(auth.gateway, "GET", "/things", {
      token: auth.token, query: { url },
    });
    const entry = { thing: data, checkedAt, error: null };
    await things.set(url, entry);
    return entry;
  } catch (error) {
    if (error.code === "unauthorized") await forgetToken();
    const entry = { thing: previous?.thing ?? null, checkedAt, error: errorJson(error) };
    await things.set(url, entry);
    return entry;
  }
}

/** Change the cached thing after a flattr or a take-back; does not reset the minute. */
export async function rememberThing(url, change) {
  const cached = await things.get(url);
  await things.set(url, {
    thing: change(cached?.thing ?? null),
    checkedAt: cached?.checkedAt ?? 0,
    error: null,
  });
}

export async function cachedMe() {
  const { me } = await ext.storage.local.get("me");
  return me ?? null;
}

/** {data, checkedAt, error} for GET /me, asked at most every few seconds unless forced. */
export async function refreshMe(auth, { force = false } = {}) {
  const cached = await cachedMe();
  if (!force && cached && Date.now() - cached.checkedAt < ME_INTERVAL_MS) return cached;
  try {
    const { data } = await call(auth.gateway, "GET", "/me", { token: auth.token });
    const me = { data, checkedAt: Date.now(), error: null };
    await ext.storage.local.set({ me });
    return me;
  } catch (error) {
    if (error.code === "unauthorized") await forgetToken();
    return { data: cached?.data ?? null, checkedAt: cached?.checkedAt ?? 0, error: errorJson(error) };
  }
}
