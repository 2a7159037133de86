// The popup's last view of each page, so that it opens with it at once.
import { SessionCache } from "./cache.js";
import { isWebUrl, withoutFragment } from "./urls.js";

export const views = new SessionCache("view:", 200);

/** The key under which a tab's last view is cached: its URL without fragment. */
export function viewKey(tabUrl) {
  return isWebUrl(tabUrl) ? withoutFragment(tabUrl) : null;
}
