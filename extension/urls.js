// Which URLs can be flattred, which one a page stands for, and host patterns.

export const MAX_URL_LENGTH = 2048;

export function isWebUrl(text) {
  if (typeof text !== "string" || text.length > MAX_URL_LENGTH) return false;
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

export function withoutFragment(text) {
  const url = new URL(text);
  url.hash = "";
  return url.href;
}

function related(hostA, hostB) {
  return hostA === hostB || hostA.endsWith(`.${hostB}`) || hostB.endsWith(`.${hostA}`);
}

/**
 * The URL a page stands for: its <link rel="canonical"> when that names an http(s) page on
 * the same host (or a parent or subdomain of it, as www.example.com and example.com), else
 * the tab's own URL. A canonical link to another site is ignored, so that a page cannot
 * send the member's flattr to somebody else's page.
 */
export function pageUrl(tabUrl, canonical) {
  if (!isWebUrl(tabUrl)) return null;
  if (isWebUrl(canonical) && related(new URL(tabUrl).hostname, new URL(canonical).hostname)) {
    return withoutFragment(canonical);
  }
  return withoutFragment(tabUrl);
}

export function normaliseHost(text) {
  const host = String(text).trim().toLowerCase().replace(/^\*\./, "").replace(/\.$/, "");
  if (!/^[a-z0-9.-]{1,253}$/.test(host) || host.startsWith(".") || host.includes("..")) {
    return null;
  }
  return host;
}

/** True when the URL's host is a blocked host or one of its subdomains. */
export function hostBlocked(url, blocklist) {
  const host = new URL(url).hostname;
  return blocklist.some((entry) => host === entry || host.endsWith(`.${entry}`));
}

/** Match patterns covering a host and its subdomains, for excludeMatches. */
export function hostPatterns(host) {
  return [`*://${host}/*`, `*://*.${host}/*`];
}

/** The gateway address as the member typed it, checked and without a trailing slash. */
export function normaliseGateway(text) {
  let url;
  try {
    url = new URL(String(text).trim());
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (url.username || url.password || url.search || url.hash) return null;
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** The host permission for a gateway. Match patterns carry no port: Chrome ignores it. */
export function gatewayPattern(gateway) {
  const url = new URL(gateway);
  return `${url.protocol}//${url.hostname}/*`;
}
