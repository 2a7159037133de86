// Adding funds by card from the popup: what a top-up costs (the card fee is paid on top, so
// the whole amount reaches the giving balance), then a Stripe Checkout page in a new tab.
// Nothing is credited here: the gateway credits the balance once Stripe confirms the payment.
import { ext } from "./browser.js";
import { ApiError, call } from "./api.js";
import { forgetToken } from "./auth.js";
import { getAuth } from "./settings.js";

async function signedIn() {
  const auth = await getAuth();
  if (!auth) throw new ApiError("not_signed_in", "not signed in");
  return auth;
}

async function ask(method, path, options) {
  const auth = await signedIn();
  try {
    return (await call(auth.gateway, method, path, { token: auth.token, ...options })).data;
  } catch (error) {
    if (error.code === "unauthorized") await forgetToken();
    throw error;
  }
}

/** "10,5" (as typed in many languages) → "10.5"; the gateway checks the rest. */
export function amountText(typed) {
  return String(typed ?? "").trim().replace(",", ".");
}

/** GET /fundings: {debt, card_funding, limits: {minimum, maximum} | null, …}. */
export function fundingState() {
  return ask("GET", "/fundings");
}

/** GET /fundings/quote: {amount, fee_estimate, total, minimum, maximum}. */
export function quoteTopUp(amount) {
  return ask("GET", "/fundings/quote", { query: { amount: amountText(amount) } });
}

/** Only a Checkout page on https is opened: never another scheme the answer might name. */
export function checkoutUrl(answer) {
  let url;
  try {
    url = new URL(answer?.checkout_url ?? "");
  } catch {
    url = null;
  }
  if (url?.protocol !== "https:") {
    throw new ApiError("invalid_checkout", "the gateway answered no https Checkout page");
  }
  return url.href;
}

/**
 * POST /fundings, then the Checkout page in a new tab: {checkout_url, amount, fee_estimate,
 * total, tabId}. One Idempotency-Key per top-up: a retried request opens the same session.
 */
export async function startTopUp(amount, idempotencyKey = crypto.randomUUID()) {
  const answer = await ask("POST", "/fundings", {
    body: { amount: amountText(amount) }, idempotencyKey,
  });
  const tab = await ext.tabs.create({ url: checkoutUrl(answer), active: true });
  return { ...answer, tabId: tab?.id ?? null };
}
