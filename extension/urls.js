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

/**
 * True when the URL has a query, even an empty one ("?"). Automatic flattring and the badge
 * never send such an address: the query may hold a session, search terms or a token. Nor do
 * they cut it off, which would make every video of youtube.com/watch?v=… one page, /watch.
 */
export function hasQuery(text) {
  return withoutFragment(text).includes("?"); // a "?" in the path or host is %-encoded
}

// Names that only mean something inside a home or company network (RFC 6761, 6762, 8375,
// ICANN's .internal) and the names such networks commonly use.
const PRIVATE_SUFFIXES = [
  "localhost", "local", "internal", "lan", "home.arpa", "home", "corp", "intranet", "private",
  "localdomain", "test", "invalid",
];

function ipv4Parts(host) {
  const parts = host.split(".");
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,3}$/.test(part))) return null;
  const numbers = parts.map(Number);
  return numbers.every((n) => n <= 255) ? numbers : null;
}

function privateIpv4([a, b]) {
  return a === 0 || a === 10 || a === 127 || a >= 224 // this network, private, loopback, multicast
    || (a === 100 && b >= 64 && b <= 127) // carrier-grade NAT
    || (a === 169 && b === 254) // link-local
    || (a === 172 && b >= 16 && b <= 31)
    || (a === 192 && b === 168)
    || (a === 192 && b === 0) // IETF protocol assignments
    || (a === 198 && (b === 18 || b === 19)); // benchmarking
}

/** The eight 16-bit groups of an IPv6 address as the URL parser writes it, or null. */
function ipv6Groups(host) {
  if (!host.startsWith("[") || !host.endsWith("]")) return null;
  const [head, tail = null] = host.slice(1, -1).split("::");
  const read = (text) => (text ? text.split(":").map((group) => Number.parseInt(group, 16)) : []);
  const front = read(head);
  const back = tail === null ? [] : read(tail);
  const groups = [...front, ...Array(8 - front.length - back.length).fill(0), ...back];
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : null;
}

function privateIpv6(groups) {
  const [first] = groups;
  if (groups.slice(0, 7).every((g) => g === 0)) return groups[7] <= 1; // :: and ::1
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) { // ::ffff:a.b.c.d
    return privateIpv4([groups[6] >> 8, groups[6] & 0xff]);
  }
  return (first & 0xfe00) === 0xfc00 // unique local fc00::/7
    || (first & 0xffc0) === 0xfe80 // link-local fe80::/10
    || (first & 0xffc0) === 0xfec0 // site-local (deprecated) fec0::/10
    || (first & 0xff00) === 0xff00; // multicast
}

/**
 * True when the URL points inside the member's own machine or network: loopback, private
 * and link-local addresses (IPv4 and IPv6), names such as *.local or *.internal, and
 * single-label names (http://intranet/). Such addresses are never sent by automatic
 * flattring or the status badge: they say what is on the member's network (2017's #65).
 */
export function isPrivateUrl(text) {
  let host;
  try {
    host = new URL(text).hostname.toLowerCase().replace(/\.$/, "");
  } catch {
    return true; // not an address we understand: treat it as private
  }
  if (!host) return true;
  const groups = ipv6Groups(host);
  if (groups) return privateIpv6(groups);
  if (host.startsWith("[")) return true;
  const ipv4 = ipv4Parts(host);
  if (ipv4) return privateIpv4(ipv4);
  if (!host.includes(".")) return true;
  return PRIVATE_SUFFIXES.some((suffix) => host === suffix || host.endsWith(`.${suffix}`));
}
