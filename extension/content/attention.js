// Attention on this page, measured here and reported to the extension as numbers only.
//
// Registered by the extension (scripting.registerContentScripts) only while the member has
// automatic flattring on. Like the 2017 extension: each interaction of the member (key,
// click, pointer move at most once a second, wheel, touch, a scroll they caused, zoom,
// selecting the tab) credits the time since the previous one, capped at 15 s; when the page
// loses focus or is hidden, counting stops. Only real input counts: events the page makes
// itself are not trusted, and a scroll counts only right after the member's wheel, touch,
// key or click (a page scrolling itself gets nothing). Audible media playing in the
// focused page counts too, once the member has interacted with the page. Every few seconds
// the credited time goes to the extension, which adds it up and decides; nothing is sent
// anywhere else. Time is credited to the address it was paid at: a single-page app that
// rewrites its address (history.pushState) is a new page here, though the document, and
// so the URL the browser gives the extension as the message's sender, stays the first one.
(() => {
  "use strict";

  if (globalThis.flattrAttentionLoaded) return;
  globalThis.flattrAttentionLoaded = true;

  const ext = globalThis.browser ?? globalThis.chrome;
  const CAP_MS = 15_000;
  const POINTER_GAP_MS = 1_000;
  const REPORT_DELAY_MS = 5_000;
  const MEDIA_TICK_MS = 5_000;
  const AUDIO_AFTER_MS = 20_000;
  // A scroll this soon after such input is the member's (momentum scrolling included).
  const SCROLL_AFTER_INPUT_MS = 1_500;
  const SCROLL_CAUSES = new Set(["keydown", "mousedown", "wheel", "touchstart", "touchmove"]);
  const EVENTS = ["keydown", "mousedown", "pointermove", "scroll", "wheel", "touchstart",
    "touchmove", "resize"];

  let lastInteraction = 0;
  let lastPointer = 0;
  let lastScrollCause = -Infinity;
  let unreportedMs = 0;
  let mediaUnreported = false;
  let soundMs = 0;
  let audio = false;
  let reportTimer = 0;
  let mediaTimer = 0;
  let page = null; // the address the unreported time was paid at, and what it says of itself

  const focused = () => document.visibilityState === "visible" && document.hasFocus();

  function readPage() {
    const canonical = document.querySelector('link[rel~="canonical" i][href]');
    const declared = document.querySelector(
      'meta[name="flattr:account" i][content], link[rel~="payment" i][href]',
    );
    return {
      url: location.href,
      canonical: canonical ? canonical.href : null,
      declared: Boolean(declared),
      title: document.title,
    };
  }

  function credit(now) {
    if (page && page.url !== location.href) {
      // Another address since the last input: what was counted belongs to the previous one.
      report();
      unreportedMs = 0;
      lastInteraction = 0;
      mediaUnreported = false;
      soundMs = 0;
      audio = false;
    }
    page = readPage();
    if (lastInteraction) unreportedMs += Math.min(now - lastInteraction, CAP_MS);
    lastInteraction = now;
    if (!reportTimer) reportTimer = setTimeout(report, REPORT_DELAY_MS);
  }

  function onInteraction(event) {
    if (!event.isTrusted || !focused()) return;
    const now = performance.now();
    if (SCROLL_CAUSES.has(event.type)) lastScrollCause = now;
    // Scroll events are trusted even when the page scrolls itself (scrollBy, scrollIntoView).
    if (event.type === "scroll" && now - lastScrollCause > SCROLL_AFTER_INPUT_MS) return;
    if (event.type === "pointermove" || event.type === "touchmove") {
      if (now - lastPointer < POINTER_GAP_MS) return;
      lastPointer = now;
    }
    credit(now);
  }

  // Selecting the tab (or coming back to the window) starts a new stretch of attention.
  function onSelected(event) {
    if (event.isTrusted && focused()) credit(performance.now());
  }

  // Sound counts only in a page the member has interacted with (they started it playing).
  const touched = () => navigator.userActivation?.hasBeenActive ?? lastInteraction > 0;

  function stopCounting() {
    if (lastInteraction) unreportedMs += Math.min(performance.now() - lastInteraction, CAP_MS);
    lastInteraction = 0;
    report();
  }

  function audibleMedia() {
    return [...document.querySelectorAll("audio, video")].some(
      (media) => !media.paused && !media.ended && !media.muted && media.volume > 0,
    );
  }

  function mediaTick() {
    if (!audibleMedia()) {
      soundMs = 0;
      clearInterval(mediaTimer);
      mediaTimer = 0;
      return;
    }
    soundMs += MEDIA_TICK_MS;
    if (soundMs >= AUDIO_AFTER_MS) audio = true;
    if (focused() && touched()) {
      mediaUnreported = true;
      credit(performance.now());
    }
  }

  function onPlaying(event) {
    if (event.isTrusted && !mediaTimer) mediaTimer = setInterval(mediaTick, MEDIA_TICK_MS);
  }

  function report() {
    clearTimeout(reportTimer);
    reportTimer = 0;
    const ms = Math.round(unreportedMs);
    if (ms < 500 || !page) return;
    unreportedMs = 0;
    const message = {
      type: "attention", ms, kind: mediaUnreported ? "media" : "interaction", audio, ...page,
    };
    mediaUnreported = false;
    try {
      ext.runtime.sendMessage(message).catch(stop);
    } catch {
      stop(); // the extension was updated or removed: this copy of the script is orphaned
    }
  }

  function stop() {
    for (const type of EVENTS) removeEventListener(type, onInteraction, true);
    document.removeEventListener("playing", onPlaying, true);
    removeEventListener("focus", onSelected);
    clearTimeout(reportTimer);
    clearInterval(mediaTimer);
  }

  for (const type of EVENTS) addEventListener(type, onInteraction, { capture: true, passive: true });
  document.addEventListener("playing", onPlaying, true);
  if (audibleMedia()) mediaTimer = setInterval(mediaTick, MEDIA_TICK_MS);
  addEventListener("blur", stopCounting);
  addEventListener("focus", onSelected);
  addEventListener("pagehide", stopCounting);
  document.addEventListener("visibilitychange", (event) => {
    if (document.visibilityState === "hidden") stopCounting();
    else onSelected(event);
  });
})();
