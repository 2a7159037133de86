// Every flattr goes through this queue, so that it reaches the gateway at most once.
//
// The Idempotency-Key is chosen when the flattr is queued and saved in storage before the
// first request; every retry sends the same key, and the gateway answers a repeated key
// with its first answer. When the gateway cannot be reached (or answers 429 or 5xx) the
// flattr stays queued and an alarm retries it after 0.5, 1, 4, 16 and then every 64 minutes.
import { ext } from "./browser.js";
import { ApiError, call, errorJson } from "./api.js";

export const QUEUE_ALARM = "flattr-queue";
export const MAX_QUEUE_ITEMS = 100;
export const RETRY_MINUTES = [0.5, 1, 4, 16, 64];
const MIN_ALARM_DELAY_MS = 30_000; // Chrome's shortest alarm

let chain = Promise.resolve();

/** One queue operation at a time, across the worker, the popup and the options page. */
export function withQueueLock(work) {
  if (globalThis.navigator?.locks) return navigator.locks.request("flattr-queue", work);
  const run = chain.then(work, work);
  chain = run.catch(() => {});
  return run;
}

export async function queuedItems() {
  const { queue } = await ext.storage.local.get("queue");
  return queue ?? [];
}

async function saveQueue(items) {
  await ext.storage.local.set({ queue: items });
}

async function enqueue(request) {
  const items = await queuedItems();
  const existing = items.find((item) => item.url === request.url);
  if (existing) return existing;
  if (items.length >= MAX_QUEUE_ITEMS) {
    throw new ApiError("queue_full", `${MAX_QUEUE_ITEMS} flattrs already wait to be sent`);
  }
  const item = {
    id: crypto.randomUUID(),
    idempotencyKey: crypto.randomUUID(),
    url: request.url,
    title: request.title ?? null,
    source: request.source,
    tabId: request.tabId ?? null,
    tabUrl: request.tabUrl ?? null,
    queuedAt: Date.now(),
    attempts: 0,
    nextAttemptAt: Date.now(),
    lastError: null,
  };
  await saveQueue([...items, item]); // saved before it is ever sent
  return item;
}

async function replaceItem(updated) {
  const items = await queuedItems();
  await saveQueue(items.map((item) => (item.id === updated.id ? updated : item)));
}

async function removeItem(id) {
  const items = await queuedItems();
  await saveQueue(items.filter((item) => item.id !== id));
}

function retryDelayMs(attempts, error) {
  const minutes = RETRY_MINUTES[Math.min(attempts, RETRY_MINUTES.length) - 1];
  return Math.max(minutes * 60_000, (error.retryAfterSeconds ?? 0) * 1000);
}

/**
 * Send one queued flattr. Returns {state: "delivered", item, answer}, {state: "pending",
 * item, error} (kept for a retry) or {state: "failed", item, error} (dropped: the gateway
 * refused it for good, e.g. own_thing or invalid_url).
 */
async function sendItem(auth, item) {
  try {
    const answer = await call(auth.gateway, "POST", "/flattrs", {
      token: auth.token, body: { url: item.url, source: "extension" },
      idempotencyKey: item.idempotencyKey,
    });
    await removeItem(item.id);
    return { state: "delivered", item, answer };
  } catch (error) {
    if (!(error instanceof ApiError) || !error.transient) {
      await removeItem(item.id);
      return { state: "failed", item, error };
    }
    const attempts = item.attempts + 1;
    const updated = {
      ...item, attempts, nextAttemptAt: Date.now() + retryDelayMs(attempts, error),
      lastError: errorJson(error),
    };
    await replaceItem(updated);
    return { state: "pending", item: updated, error };
  }
}

/** Queue a flattr (or find the one already queued for that URL) and try to send it now. */
export async function submit(auth, request) {
  return withQueueLock(async () => {
    const result = await sendItem(auth, await enqueue(request));
    await scheduleRetry();
    return result;
  });
}

/** Send what is due (everything when forced); stops at the first unreachable gateway. */
export async function flush(auth, { force = false } = {}) {
  return withQueueLock(async () => {
    const results = [];
    for (const item of await queuedItems()) {
      if (!force && item.nextAttemptAt > Date.now()) continue;
      const result = await sendItem(auth, item);
      results.push(result);
      if (result.state === "pending" && result.error.code === "offline") break;
    }
    await scheduleRetry();
    return results;
  });
}

/** Drop a flattr that was not sent yet; true when there was one. */
export async function cancel(url) {
  return withQueueLock(async () => {
    const items = await queuedItems();
    const kept = items.filter((item) => item.url !== url);
    await saveQueue(kept);
    await scheduleRetry();
    return kept.length !== items.length;
  });
}

async function scheduleRetry() {
  const items = await queuedItems();
  if (!items.length) {
    await ext.alarms.clear(QUEUE_ALARM);
    return;
  }
  const earliest = Math.min(...items.map((item) => item.nextAttemptAt));
  await ext.alarms.create(QUEUE_ALARM, { when: Math.max(earliest, Date.now() + MIN_ALARM_DELAY_MS) });
}
