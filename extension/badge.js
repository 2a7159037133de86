// The toolbar button's badge, per tab: what the member can tell at a glance.
import { ext } from "./browser.js";

export const BADGES = Object.freeze({
  flattred: { text: "✓", color: "#2e7d32", title: "You flattred this page this month" },
  owned: { text: "•", color: "#1565c0", title: "This page's creator is on Flattr" },
  unclaimed: {
    text: "?", color: "#757575",
    title: "Nobody has claimed this page yet: a flattr is held for its creator",
  },
  pending: { text: "…", color: "#b26a00", title: "Your flattr waits to be sent" },
  error: { text: "!", color: "#c62828", title: "Flattr could not do that" },
  none: { text: "", color: "#757575", title: "" },
});

export function badgeFor({ thing = null, pending = false, signedIn = true } = {}) {
  if (!signedIn) return "none";
  if (pending) return "pending";
  if (!thing) return "none";
  if (thing.flattred_by_me) return "flattred";
  return thing.owner ? "owned" : "unclaimed";
}

export async function showBadge(tabId, name, detail = "") {
  if (!Number.isInteger(tabId) || tabId < 0) return;
  const badge = BADGES[name];
  const title = ["Flattr", badge.title, detail].filter(Boolean).join(" — ");
  try {
    await Promise.all([
      ext.action.setBadgeText({ tabId, text: badge.text }),
      ext.action.setBadgeBackgroundColor({ tabId, color: badge.color }),
      ext.action.setBadgeTextColor?.({ tabId, color: "#ffffff" }),
      ext.action.setTitle({ tabId, title }),
    ]);
  } catch {
    // The tab was closed meanwhile.
  }
}

/** Show a short confirmation ("+1") on a tab, then put its badge back as it was. */
export async function flash(tabId, text, color, title, milliseconds = 3000) {
  if (!Number.isInteger(tabId) || tabId < 0) return;
  try {
    const [previousText, previousColor, previousTitle] = await Promise.all([
      ext.action.getBadgeText({ tabId }),
      ext.action.getBadgeBackgroundColor({ tabId }),
      ext.action.getTitle({ tabId }),
    ]);
    await ext.action.setBadgeText({ tabId, text });
    await ext.action.setBadgeBackgroundColor({ tabId, color });
    await ext.action.setTitle({ tabId, title: `Flattr — ${title}` });
    setTimeout(() => {
      Promise.all([
        ext.action.setBadgeText({ tabId, text: previousText }),
        ext.action.setBadgeBackgroundColor({ tabId, color: previousColor }),
        ext.action.setTitle({ tabId, title: previousTitle }),
      ]).catch(() => {});
    }, milliseconds);
  } catch {
    // The tab was closed meanwhile.
  }
}

export async function clearAllBadges() {
  const tabs = await ext.tabs.query({});
  await Promise.all(tabs.map((tab) => showBadge(tab.id, "none")));
}
