// Every flattr goes through this queue, so that it reaches the gateway at most once.
//
// The Idempotency-Key is chosen when the flattr is queued and saved in storage before the
// first request; every retry sends the same key, and the gateway answers a repeated key
// with its first answer. When the gateway cannot be reached (or answers 429 or 5xx) the
// flattr stays queued and an alarm retries it after 0.5, 1, 4, 16 and then every 64 minutes,
// or at once when the gateway answers another request.
//
// Cancelling is reliable: a flattr cancelled while its request is on the way, or after an
// attempt that got no answer (which may have reached the gateway), is taken back with
// DELETE /flattrs/{id} once the gateway says which flattr that request made.
import { ext } from "./browser.js";
import { ApiError, call, errorJson, gatewayAnsweredAt, isTransient } from "./api.js";

export const QUEUE_ALARM = "flattr-queue";
export const MAX_QUEUE_ITEMS = 100;
export const RETRY_MINUTES = [0.5, 1, 4, 16, 64];
const MIN_ALARM_DELAY_MS = 30_000; // Chrome's shortest alarm
// What the last sent flattrs became, so that a cancel that arrives just after can take back.
const SENT_KEPT_MS = 15 * 60_000;
const SENT_KEPT_ITEMS = 20;

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

/** The flattrs waiting to be sent (not those cancelled, which wait only to be taken back). */
export async function pendingItems() {
  return (await queuedItems()).filter((item) => !item.withdraw);
}

async function enqueue(request) {
  const items = await queuedItems();
  const existing = items.find((item) => item.url === request.url && !item.withdraw);
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
    lastAttemptAt: 0,
    lastError: null,
    mayHaveArrived: false, // an attempt got no answer: the gateway may have made the flattr
    withdraw: false, // cancelled: take back whatever the requests made
    flattrId: null, // (withdraw) the flattr to take back, once known
  };
  await saveQueue([...items, item]); // saved before it is ever sent
  return item;
}

async function replaceItem(updated) {
  const items = await queuedItems();
  await saveQueue(items.map((item) => (item.id === updated.id ? updated : item)));
}

async function removeItem(id, sentRecord = null) {
  const items = await queuedItems();
  const queue = items.filter((item) => item.id !== id);
  if (!sentRecord) {
    await saveQueue(queue);
    return;
  }
  const { sent = {} } = await ext.storage.local.get("sent");
  const now = Date.now();
  const kept = Object.entries(sent).filter(([, record]) => now - record.at < SENT_KEPT_MS)
    .sort(([, a], [, b]) => b.at - a.at).slice(0, SENT_KEPT_ITEMS - 1);
  // One write: the item leaves the queue and its record appears together.
  await ext.storage.local.set({
    queue, sent: Object.fromEntries([[id, { ...sentRecord, at: now }], ...kept]),
  });
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
function post(auth, item) {
  return call(auth.gateway, "POST", "/flattrs", {
    token: auth.token,
    body: { url: item.url, source: item.source === "automatic" ? "automatic" : "extension" },
    idempotencyKey: item.idempotencyKey,
  });
}

async function keepForRetry(item, error) {
  const attempts = item.attempts + 1;
  const updated = {
    ...item, attempts, nextAttemptAt: Date.now() + retryDelayMs(attempts, error),
    lastAttemptAt: Date.now(), lastError: errorJson(error),
    mayHaveArrived: item.mayHaveArrived || error.code === "offline",
  };
  await replaceItem(updated);
  return { state: "pending", item: updated, error };
}

async function sendItem(auth, item) {
  if (item.withdraw) return withdrawItem(auth, item);
  try {
    const answer = await post(auth, item);
    const { created, flattr } = answer.data;
    await removeItem(item.id, { url: item.url, flattrId: flattr?.id ?? null, created });
    return { state: "delivered", item, answer };
  } catch (error) {
    if (!(error instanceof ApiError) || !error.transient) {
      await removeItem(item.id);
      return { state: "failed", item, error };
    }
    return keepForRetry(item, error);
  }
}

/**
 * A cancelled flattr whose request may have reached the gateway: the same request again
 * (same Idempotency-Key: the gateway replays its first answer, or makes the flattr now)
 * tells which flattr it made, and that flattr is taken back. A flattr the request did not
 * make (created: false, it was there before) is left alone.
 */
async function withdrawItem(auth, item) {
  let current = item;
  try {
    if (current.flattrId === null) {
      const { data } = await post(auth, current);
      if (!data.created) {
        await removeItem(current.id);
        return { state: "withdrawn", item: current, flattrId: null };
      }
      current = { ...current, flattrId: data.flattr.id };
      await replaceItem(current); // a retry takes it back without asking again
    }
    await call(auth.gateway, "DELETE", `/flattrs/${current.flattrId}`, { token: auth.token });
  } catch (error) {
    if (error instanceof ApiError && error.transient) return keepForRetry(current, error);
    if (error.code !== "not_found") {
      await removeItem(current.id);
      return { state: "failed", item: current, error };
    }
  }
  await removeItem(current.id);
  return { state: "withdrawn", item: current, flattrId: current.flattrId };
}

/** Due now: its time came, or its last try found no gateway and the gateway answered since. */
function due(item, now = Date.now()) {
  if (item.nextAttemptAt <= now) return true;
  return isTransient(item.lastError) && gatewayAnsweredAt() > item.lastAttemptAt;
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
      if (!force && !due(item)) continue;
      const result = await sendItem(auth, item);
      results.push(result);
      if (result.state === "pending" && result.error.code === "offline") break;
    }
    await scheduleRetry();
    return results;
  });
}

/**
 * Cancel the flattr of `url` that waits to be sent (`itemId`: the one the member saw
 * waiting, which may have been sent since). Waits for a send under way to finish, then:
 * {state: "cancelled"} nothing reached the gateway; {state: "withdrawn", flattrId} it had
 * made the flattr, which is taken back; {state: "withdrawing"} it may have, and it will be
 * taken back as soon as the gateway answers; {state: "none"} there was nothing to cancel.
 */
export async function cancel(auth, url, itemId = null) {
  return withQueueLock(async () => {
    const items = await queuedItems();
    const mine = items.filter((item) => item.url === url && !item.withdraw);
    const { sent = {} } = await ext.storage.local.get("sent");
    const record = itemId ? sent[itemId] : null;
    const toWithdraw = mine.filter((item) => item.mayHaveArrived)
      .map((item) => ({ ...item, withdraw: true, nextAttemptAt: Date.now() }));
    if (!mine.length && record?.created && record.flattrId !== null) {
      // Sent while the member was cancelling: take back the flattr it made.
      toWithdraw.push({
        id: crypto.randomUUID(), idempotencyKey: null, url, source: "cancel", tabId: null,
        tabUrl: null, queuedAt: Date.now(), attempts: 0, nextAttemptAt: Date.now(),
        lastAttemptAt: 0, lastError: null, mayHaveArrived: true, withdraw: true,
        flattrId: record.flattrId,
      });
      await ext.storage.local.set({ sent: { ...sent, [itemId]: { ...record, created: false } } });
    }
    await saveQueue([...items.filter((item) => !mine.includes(item)), ...toWithdraw]);
    let state = mine.length ? "cancelled" : "none";
    let flattrId = null;
    for (const item of toWithdraw) {
      const result = await sendItem(auth, item);
      if (result.state === "withdrawn" && result.flattrId !== null) {
        state = "withdrawn";
        flattrId = result.flattrId;
      } else if (result.state === "pending") {
        state = "withdrawing";
      }
    }
    await scheduleRetry();
    return { state, flattrId };
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
