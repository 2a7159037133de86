// The service worker (an event page in Firefox): wires the browser's events to the modules.
// Listeners are added synchronously at the top level, as MV3 requires for waking up.
// Optional APIs are used only where the browser has them: Firefox for Android has no
// context menus and no keyboard shortcuts (contextMenus, commands).
import { ext } from "./browser.js";
import { errorJson, onGatewayBack } from "./api.js";
import { signIn, signOut } from "./auth.js";
import { recordAttention } from "./attention.js";
import { clearAllBadges } from "./badge.js";
import { flattrLink, flattrTab, flattrUrl, takeBack } from "./flattring.js";
import { PAGE_ORIGINS, syncAttentionScript } from "./permissions.js";
import { QUEUE_ALARM, queuedItems } from "./queue.js";
import { updateSettings } from "./settings.js";
import { sendQueued, statusOfTab } from "./status.js";
import { onTabRemoved, onTabUpdated } from "./tabwatch.js";
import { fundingState, quoteTopUp, startTopUp } from "./topup.js";

export const LINK_MENU_ID = "flattr-link";
export const FLATTR_COMMAND = "flattr-page";

ext.contextMenus?.onClicked.addListener((info, tab) => {
  if (info.menuItemId === LINK_MENU_ID) flattrLink(info, tab).catch(console.error);
});

ext.commands?.onCommand.addListener((command, tab) => {
  if (command === FLATTR_COMMAND) flattrTab(tab).catch(console.error);
});

// The alarm rings when the earliest queued flattr is due: it retries them all (each keeps
// its Idempotency-Key), stopping at the first sign that the gateway is still unreachable.
async function onAlarm(alarm) {
  if (alarm.name === QUEUE_ALARM) return sendQueued({ force: true });
  return [];
}

ext.alarms.onAlarm.addListener((alarm) => {
  onAlarm(alarm).catch(console.error);
});

// The gateway answers again after it could not be reached: send what waited, now.
onGatewayBack(() => sendQueued().catch(console.error));

ext.tabs.onUpdated.addListener(onTabUpdated);
ext.tabs.onRemoved.addListener(onTabRemoved);

ext.storage.onChanged.addListener((changes, area) => {
  if (area !== "local") return;
  if (changes.settings || changes.auth) syncAttentionScript().catch(console.error);
  if (changes.auth && !changes.auth.newValue) clearAllBadges().catch(console.error);
});

ext.permissions.onRemoved?.addListener((removed) => {
  const changes = {};
  if (removed.permissions?.includes("tabs")) changes.showStatus = false;
  if (removed.origins?.some((origin) => PAGE_ORIGINS.includes(origin))) changes.autoFlattr = false;
  if (Object.keys(changes).length) updateSettings(changes).catch(console.error);
});

// A new member starts in the options, where they sign in.
ext.runtime.onInstalled.addListener((details) => {
  if (details.reason === "install") ready.then(() => ext.runtime.openOptionsPage()).catch(() => {});
});

// Extension pages (popup, options) may ask for anything; a content script only reports
// attention. A page's own scripts cannot reach this listener at all.
const PAGE_MESSAGES = {
  status: (message) => statusOfTab(message.tabId),
  flattr: (message) => flattrUrl({
    url: message.url, title: message.title, source: "popup", tabId: message.tabId,
    tabUrl: message.tabUrl,
  }),
  "take-back": (message) => takeBack(message),
  "send-queued": () => sendQueued({ force: true }),
  "sign-in": (message) => signIn(message.gateway, message.handle, message.password)
    .then((auth) => ({ signedIn: true, handle: auth.handle, gateway: auth.gateway })),
  "sign-out": () => signOut().then((done) => ({ ...done, error: done.error && errorJson(done.error) })),
  "sync-attention": () => syncAttentionScript(),
  funding: () => fundingState(),
  "top-up-quote": (message) => quoteTopUp(message.amount),
  "top-up": (message) => startTopUp(message.amount, message.idempotencyKey),
};

function fromExtensionPage(sender) {
  return sender.id === ext.runtime.id && sender.url?.startsWith(ext.runtime.getURL(""));
}

ext.runtime.onMessage.addListener((message, sender, sendResponse) => {
  let work;
  if (message?.type === "attention" && sender.tab) work = recordAttention(message, sender);
  else if (fromExtensionPage(sender) && PAGE_MESSAGES[message?.type]) {
    work = PAGE_MESSAGES[message.type](message);
  } else return false;
  Promise.resolve(work).then(
    (answer) => sendResponse({ ok: true, answer }),
    (error) => sendResponse({ ok: false, error: errorJson(error) }),
  );
  return true; // the answer comes asynchronously
});

// The token and the member's data are for the extension's own pages and worker only: a
// content script (which runs inside web pages) may not read storage.local. Chromium only;
// Firefox has no such switch for storage.local yet.
async function protectStorage() {
  try {
    await ext.storage.local.setAccessLevel?.({ accessLevel: "TRUSTED_CONTEXTS" });
  } catch (error) {
    console.warn("storage.local stays readable by content scripts:", error);
  }
}

async function addLinkMenu() {
  if (!ext.contextMenus) return;
  await ext.contextMenus.removeAll();
  ext.contextMenus.create({
    id: LINK_MENU_ID,
    title: "Flattr this link",
    contexts: ["link"],
    targetUrlPatterns: PAGE_ORIGINS,
  });
}

async function start() {
  await protectStorage();
  await addLinkMenu();
  await syncAttentionScript();
  if ((await queuedItems()).length && !(await ext.alarms.get(QUEUE_ALARM))) {
    await ext.alarms.create(QUEUE_ALARM, { delayInMinutes: 0.5 });
  }
}

const ready = start();

// For the end-to-end tests (and the curious, from the worker's console): the same functions
// the listeners call, and a promise that settles once start-up is done.
globalThis.flattr = {
  ready, onAlarm, flattrLink, flattrTab, flattrUrl, takeBack, sendQueued, statusOfTab,
  recordAttention,
};
