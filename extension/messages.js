// Words for every failure the member can meet, by the gateway's stable error codes.

const MESSAGES = {
  offline: "The Flattr gateway can't be reached right now.",
  timeout: "The Flattr gateway took too long to answer.",
  not_signed_in: "Sign in to flattr: open the options.",
  unauthorized: "Your sign-in has ended: sign in again in the options.",
  invalid_credentials: "The handle or the password is wrong.",
  invalid_gateway: "The gateway address must be an http:// or https:// address.",
  no_gateway_access: "Flattr needs your permission to reach that gateway.",
  insufficient_scope: "This sign-in may not do that: sign out and sign in again.",
  own_thing: "This is your own page: you can't flattr yourself.",
  invalid_url: "Only web pages (http and https addresses) can be flattred.",
  invalid_thing: "This can't be flattred.",
  invalid_request: "The gateway refused the request.",
  period_closed: "This month is being settled: flattrs can't change any more.",
  budget_below_minimum: "Your monthly budget is below the minimum.",
  not_found: "That flattr isn't there any more (already taken back?).",
  database_unavailable: "The gateway's database is unavailable: Flattr will try again.",
  internal_error: "The gateway failed on its side: try again later.",
  queue_full: "Too many flattrs wait to be sent: try again once the gateway is back.",
  debt_outstanding: "You owe money after a card refund or dispute: top up to flattr again.",
  payment_provider_unavailable: "The card payment service can't be reached: try again later.",
  invalid_checkout: "The gateway named no Checkout page to open.",
  no_access: "Open the popup from the toolbar button on the page you want to flattr.",
  internal: "Something went wrong in the extension.",
};

// The gateway's own words are the clearest for these (the limits of a top-up, why this
// deployment takes no card payments); ours only when it gave none.
const SAID_BY_GATEWAY = {
  funding_unavailable: "Card top-ups aren't offered here: ask an admin to credit you.",
  invalid_amount: "That amount isn't possible.",
};

/** "a top-up is between 5.00 and 500.00 EUR" → "A top-up is between 5.00 and 500.00 EUR." */
function sentence(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed) return "";
  const ended = /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
  return ended[0].toUpperCase() + ended.slice(1);
}

/** One sentence for an error object {code, message, status, retryAfterSeconds}. */
export function describe(error) {
  if (!error) return "";
  if (SAID_BY_GATEWAY[error.code]) return sentence(error.message) || SAID_BY_GATEWAY[error.code];
  if (error.code === "rate_limited") {
    const seconds = error.retryAfterSeconds ?? 60;
    return `Too many requests: try again in ${seconds} s.`;
  }
  if (MESSAGES[error.code]) return MESSAGES[error.code];
  if (error.status >= 500) return MESSAGES.internal_error;
  return error.message || MESSAGES.internal;
}
