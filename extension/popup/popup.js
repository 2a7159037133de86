// The popup: the page (title, canonical URL, owner, this month's count), the Flattr / Take
// back button, the member's month, and a card top-up (its fee shown before paying, then
// Stripe's Checkout page in a new tab). It shows the last known state at once (from
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
// The top-up form: its quote is asked again as the amount changes (only the newest answer
// counts); one Idempotency-Key per amount, so paying again after a failure opens the
// same Checkout session.
const QUOTE_DELAY_MS = 300;
const topUp = { open: false, asked: 0, quoteTimer: null, paying: false, key: null, keyFor: null };

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

/** What refunds or disputes left the member owing (a decimal string), or null. */
function debtOf(me) {
  const debt = me?.balances?.debt;
  return Number(debt) > 0 ? debt : null;
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
  if (debtOf(me)) {
    note = `You owe ${money(debtOf(me))} after a card refund or dispute: your flattrs are `
      + "paused until a top-up repays it.";
  } else if (!me.budget) {
    note = "No monthly budget yet: your flattrs are counted but give nothing until you set one"
      + (me.minimum_budget ? ` (at least ${money(me.minimum_budget)}).` : ".");
  } else if (!me.funded) {
    note = "Your giving balance doesn't cover your budget: top up so your flattrs give.";
  }
  setText("month-note", note);
  $("top-up").className = debtOf(me) ? "primary" : "";
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
    topUp.open = false;
  }
  $("topup").hidden = !topUp.open;
  $("top-up").setAttribute("aria-expanded", String(topUp.open));
}

// --- Top up -------------------------------------------------------------------------------

function currency() {
  return view?.me?.currency ?? "EUR";
}

function cents(amount) {
  return Math.ceil(Number(amount) * 100 - 1e-6);
}

function sayTopUp(text, kind = "error", dashboard = false) {
  setText("topup-message", text);
  $("topup-message").dataset.kind = kind;
  const link = $("topup-dashboard");
  link.hidden = !(dashboard && view?.gateway);
  if (!link.hidden) link.href = `${view.gateway}/dashboard`;
}

function showQuote(quote) {
  const money = (amount) => formatMoney(amount, currency());
  $("topup-quote").hidden = !quote;
  $("topup-pay").disabled = !quote || topUp.paying;
  if (!quote) return;
  $("topup-fee").textContent = money(quote.fee_estimate);
  $("topup-total").textContent = money(quote.total);
  $("topup-added").textContent = money(quote.amount);
  $("topup-pay").textContent = `Pay ${money(quote.total)} by card`;
  setText("topup-limits", `From ${money(quote.minimum)} to ${money(quote.maximum)}; the card `
    + "fee is paid on top, so the whole amount reaches your giving balance.");
}

function topUpFailed(error) {
  if (error?.code === "insufficient_scope") {
    sayTopUp("This sign-in may not open a card payment: add funds on your dashboard.", "error",
      true);
  } else {
    sayTopUp(describe(error));
  }
}

async function quoteNow() {
  clearTimeout(topUp.quoteTimer);
  const asked = ++topUp.asked;
  const amount = $("topup-amount").value;
  $("topup-pay").disabled = true;
  if (!amount.trim()) {
    showQuote(null);
    sayTopUp("");
    return;
  }
  try {
    const quote = await ask({ type: "top-up-quote", amount });
    if (asked !== topUp.asked) return;
    sayTopUp("");
    showQuote(quote);
  } catch (error) {
    if (asked !== topUp.asked) return;
    showQuote(null);
    topUpFailed(error);
  }
}

/** The first amount offered: what is owed, else 10, within the deployment's limits. */
function firstAmount(funding) {
  const owed = debtOf(view?.me) ?? funding?.debt;
  let wanted = Number(owed) > 0 ? cents(owed) : 1000;
  if (funding?.limits) {
    wanted = Math.min(Math.max(wanted, cents(funding.limits.minimum)), cents(funding.limits.maximum));
  }
  return (wanted / 100).toFixed(2);
}

async function openTopUp() {
  if (topUp.open) return;
  topUp.open = true;
  render(view);
  $("topup-currency").textContent = currency();
  $("topup-amount").focus();
  let funding = null;
  try {
    funding = await ask({ type: "funding" });
  } catch {
    // The quote below says what is wrong, in the gateway's words.
  }
  if (!$("topup-amount").value) $("topup-amount").value = firstAmount(funding);
  await quoteNow();
}

async function onPay(event) {
  event.preventDefault();
  if (topUp.paying || $("topup-pay").disabled) return;
  const amount = $("topup-amount").value.trim();
  if (topUp.keyFor !== amount) {
    topUp.key = crypto.randomUUID();
    topUp.keyFor = amount;
  }
  topUp.paying = true;
  $("topup-pay").disabled = true;
  sayTopUp("Opening Stripe's Checkout page…", "pending");
  try {
    await ask({ type: "top-up", amount, idempotencyKey: topUp.key });
    topUp.keyFor = null; // a new payment next time
    sayTopUp("Stripe's Checkout page opened in a new tab: your giving balance grows once the "
      + "payment is confirmed.", "done");
  } catch (error) {
    topUpFailed(error);
  }
  topUp.paying = false;
  $("topup-pay").disabled = $("topup-quote").hidden;
}

function onAmountInput() {
  clearTimeout(topUp.quoteTimer);
  topUp.asked += 1; // an answer for an earlier amount no longer counts
  $("topup-pay").disabled = true;
  topUp.quoteTimer = setTimeout(() => quoteNow().catch(() => {}), QUOTE_DELAY_MS);
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
    if (outcome.error?.code === "debt_outstanding") openTopUp().catch(() => {});
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
$("top-up").addEventListener("click", () => {
  if (topUp.open) {
    topUp.open = false;
    render(view);
  } else {
    openTopUp().catch(() => {});
  }
});
$("topup-form").addEventListener("submit", (event) => {
  onPay(event).catch(() => {});
});
$("topup-amount").addEventListener("input", onAmountInput);
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
