// What a page says about itself, read in the tab with scripting.executeScript (allowed by
// activeTab once the member opens the popup, uses the shortcut or the context menu).
import { ext } from "./browser.js";
import { isWebUrl } from "./urls.js";

const HANDLE = /^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$/;
const MAX_TITLE_LENGTH = 300;

// Runs in the page: no closure over this module, only what it returns comes back.
function pageFacts() {
  const canonical = document.querySelector('link[rel~="canonical" i][href]');
  const account = document.querySelector('meta[name="flattr:account" i][content]');
  return {
    url: location.href,
    title: document.title,
    canonical: canonical ? canonical.href : null,
    account: account ? account.content : null,
  };
}

/** {url, title, canonical, account} with everything checked, or null when not readable. */
export async function readPage(tabId) {
  let injected;
  try {
    [injected] = await ext.scripting.executeScript({ target: { tabId }, func: pageFacts });
  } catch {
    return null; // no access to this tab (chrome:// pages, the store, no activeTab grant)
  }
  const facts = injected?.result;
  if (!facts || typeof facts !== "object") return null;
  const account = typeof facts.account === "string" ? facts.account.trim().replace(/^@/, "") : "";
  return {
    url: isWebUrl(facts.url) ? facts.url : null,
    title: typeof facts.title === "string" ? facts.title.trim().slice(0, MAX_TITLE_LENGTH) : "",
    canonical: isWebUrl(facts.canonical) ? facts.canonical : null,
    account: HANDLE.test(account) ? account : null,
  };
}
