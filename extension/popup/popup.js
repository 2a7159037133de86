// The popup: the page (title, canonical URL, owner, this month's count), the Flattr / Take
// back button, and the member's month. It shows the last known state at once (from
// storage), then asks the worker for a fresh one.
import { ext } from "../browser.js";
import { formatMoney, formatMonth } from "../format.js";
import { describe } from "../messages.js";
import { viewKey, views } from "../views.js";

const scriptStartedMs = performance.now(); // the page and its modules are loaded by now
const main = document.getElementById("popup");
const $ = (id) => document.getElementById(id);
let view = null;
let tab = null;
let busy = false;
let outcomeNotice = null;

async function ask(message) {
  const reply = await ext.runtime.sendMessage(message);
  if (!reply?.ok) throw reply?.error ?? { code: "internal", message: "no answer" };
  return reply.answer;
}

/** The tab this popup is about: ?tab=ID (a popup opened in a tab, as in tests) or the active one. */
async function findTab() {
  const id = Number(new URLSearchParams(location.search).get("tab"));
  if (Number.isSafeInteger(id) && id >= 0) return ext.tabs.get(id);
  const [active] = await ext.tabs.query({ active: true, currentWindow: true });
  return active;
}

async function cachedView() {
  const [{ auth, me }, cached] = await Promise.all([
    ext.storage.local.get(["auth", "me"]),
    viewKey(tab.url) ? views.get(viewKey(tab.url)) : null,
  ]);
  if (!auth?.token) return { signedIn: false, page: { title: tab.title ?? "" } };
  if (cached) return { ...cached, signedIn: true, handle: auth.handle, me: me?.data ?? cached.me };
  return {
    signedIn: true, handle: auth.handle, me: me?.data ?? null,
    page: { title: tab.title ?? "", url: tab.url ?? null, account: null }, thing: null,
    loading: true,
  };
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function setText(id, text) {
  const element = $(id);
  element.textContent = text ?? "";
  element.hidden = !text;
}

function ownPage(current) {
  const owner = current.thing?.owner;
  return Boolean(owner && current.handle && owner.toLowerCase() === current.handle.toLowerCase());
}

function noticeFor(current) {
  if (outcomeNotice) return outcomeNotice;
  if (current.problem) return { kind: "error", text: describe(current.problem) };
  if (current.pending) {
    const why = current.pending.lastError ? ` ${describe(current.pending.lastError)}` : "";
    return { kind: "pending", text: `Pending: your flattr waits to be sent, once, automatically.${why}` };
  }
  if (current.failure && !current.thing?.flattred_by_me) {
    return { kind: "error", text: `Your queued flattr failed: ${describe(current.failure.error)}` };
  }
  if (current.automatic && current.thing?.flattred_by_me !== false) {
    const seconds = Math.round((current.automatic.attentionMs ?? 0) / 1000);
    return { kind: "done", text: `Flattred automatically after ${seconds} s of your attention.` };
  }
  if (current.thing?.flattred_by_me) return { kind: "done", text: "You flattred this page this month." };
  if (ownPage(current)) return { kind: "error", text: describe({ code: "own_thing" }) };
  if (current.lookupError) return { kind: "error", text: describe(current.lookupError) };
  return null;
}

function renderPage(current) {
  const { page = {}, thing } = current;
  $("page-title").textContent = page.title || page.url || "This page";
  setText("page-url", page.url ? `${page.url}${page.canonical ? "  (canonical)" : ""}` : "");
  if (thing) {
    let owner = "Not claimed yet — your flattr is held for its creator.";
    if (ownPage(current)) owner = "This is your own page.";
    else if (thing.owner) owner = `By @${thing.owner}`;
    setText("owner", owner);
    setText("count", `${plural(thing.count_this_period ?? 0, "flattr")} this month`);
  } else {
    setText("owner", current.loading ? "Looking this page up…" : "");
    setText("count", "");
  }
  const account = page.account;
  let hint = "";
  if (account && thing?.owner && thing.owner.toLowerCase() === account.toLowerCase()) {
    hint = `The page names @${account} as its creator, and Flattr agrees.`;
  } else if (account && thing?.owner) {
    hint = `The page names @${account} as its creator; Flattr knows @${thing.owner} as its owner.`;
  } else if (account) {
    hint = `The page names @${account} as its creator (not verified by Flattr yet).`;
  }
  setText("hint", hint);

  const notice = noticeFor(current);
  setText("notice", notice?.text);
  if (notice) $("notice").dataset.kind = notice.kind;

  const button = $("flattr");
  const undo = Boolean(current.pending) || Boolean(thing?.flattred_by_me);
  button.textContent = current.pending ? "Cancel" : undo ? "Take back" : "Flattr";
  button.className = undo ? "" : "primary";
  button.disabled = busy || !page.url || Boolean(current.problem) || current.loading === true
    || (ownPage(current) && !undo);
}

function renderMonth(me) {
  $("month").hidden = !me;
  if (!me) return;
  const money = (amount) => formatMoney(amount, me.currency ?? "EUR");
  $("month-title").textContent = `Your month · ${formatMonth(me.period)}`;
  $("budget").textContent = me.budget ? money(me.budget) : "not set";
  $("flattr-count").textContent = new Intl.NumberFormat().format(me.flattr_count ?? 0);
  $("share").textContent = me.estimated_share ? money(me.estimated_share) : "–";
  let note = "";
  if (!me.budget) {
    note = "No monthly budget yet: your flattrs are counted but give nothing until you set one"
      + (me.minimum_budget ? ` (at least ${money(me.minimum_budget)}).` : ".");
  } else if (!me.funded) {
    note = "Your giving balance doesn't cover your budget: add funds so your flattrs give.";
  }
  setText("month-note", note);
}

function render(current) {
  view = current;
  $("signed-out").hidden = current.signedIn;
  $("page").hidden = !current.signedIn;
  $("who").textContent = current.signedIn && current.handle ? `@${current.handle}` : "";
  if (current.signedIn) {
    renderPage(current);
    renderMonth(current.me);
  } else {
    $("month").hidden = true;
  }
}

async function refresh() {
  render(await ask({ type: "status", tabId: tab.id }));
}

async function onButton() {
  if (!view || busy) return;
  busy = true;
  outcomeNotice = null;
  const button = $("flattr");
  const undoing = Boolean(view.pending) || Boolean(view.thing?.flattred_by_me);
  button.disabled = true;
  button.textContent = undoing ? "Taking back…" : "Flattring…";
  try {
    const outcome = undoing
      ? await ask({
        type: "take-back", url: view.page.url, flattrId: view.thing?.my_flattr_id ?? null,
        tabId: tab.id, itemId: view.pending?.id ?? null,
      })
      : await ask({
        type: "flattr", url: view.page.url, title: view.page.title, tabId: tab.id,
        tabUrl: tab.url,
      });
    if (outcome.state === "error") outcomeNotice = { kind: "error", text: describe(outcome.error) };
  } catch (error) {
    outcomeNotice = { kind: "error", text: describe(error) };
  }
  busy = false;
  try {
    await refresh();
  } catch (error) {
    outcomeNotice = { kind: "error", text: describe(error) };
    render(view);
  }
  main.dataset.state = "ready";
}

async function open() {
  tab = await findTab();
  render(await cachedView());
  performance.mark("flattr:cached-state");
  globalThis.flattrTiming = { scriptStartedMs, cachedStateMs: performance.now(), freshStateMs: null };
  main.dataset.state = "cached";
  try {
    await refresh();
  } catch (error) {
    outcomeNotice = { kind: "error", text: describe(error) };
    render({ ...view, loading: false });
  }
  performance.mark("flattr:fresh-state");
  globalThis.flattrTiming.freshStateMs = performance.now();
  main.dataset.state = "ready";
  main.setAttribute("aria-busy", "false");
}

$("flattr").addEventListener("click", onButton);
$("sign-in").addEventListener("click", () => ext.runtime.openOptionsPage());
$("options").addEventListener("click", (event) => {
  event.preventDefault();
  ext.runtime.openOptionsPage();
});

open().catch((error) => {
  main.dataset.state = "ready";
  outcomeNotice = { kind: "error", text: describe(error) };
  render({ signedIn: true, page: {}, problem: { code: "internal" } });
});
