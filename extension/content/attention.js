// Attention on this page, measured here and reported to the extension as numbers only.
//
// Registered by the extension (scripting.registerContentScripts) only while the member has
// automatic flattring on. Like the 2017 extension: each trusted interaction (key, click,
// pointer move at most once a second, scroll, wheel, touch) credits the time since the
// previous one, capped at 15 s; when the page loses focus or is hidden, counting stops.
// Audible media playing in the focused page counts too. Every few seconds the credited time
// goes to the extension, which adds it up and decides; nothing is sent anywhere else.
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
  const EVENTS = ["keydown", "mousedown", "pointermove", "scroll", "wheel", "touchstart"];

  let lastInteraction = 0;
  let lastPointer = 0;
  let unreportedMs = 0;
  let mediaUnreported = false;
  let soundMs = 0;
  let audio = false;
  let reportTimer = 0;
  let mediaTimer = 0;

  const focused = () => document.visibilityState === "visible" && document.hasFocus();

  function credit(now) {
    if (lastInteraction) unreportedMs += Math.min(now - lastInteraction, CAP_MS);
    lastInteraction = now;
    if (!reportTimer) reportTimer = setTimeout(report, REPORT_DELAY_MS);
  }

  function onInteraction(event) {
    if (!event.isTrusted || !focused()) return;
    const now = performance.now();
    if (event.type === "pointermove") {
      if (now - lastPointer < POINTER_GAP_MS) return;
      lastPointer = now;
    }
    credit(now);
  }

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
    if (focused()) {
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
    if (ms < 500) return;
    unreportedMs = 0;
    const canonical = document.querySelector('link[rel~="canonical" i][href]');
    const declared = document.querySelector(
      'meta[name="flattr:account" i][content], link[rel~="payment" i][href]',
    );
    const message = {
      type: "attention",
      ms,
      kind: mediaUnreported ? "media" : "interaction",
      audio,
      canonical: canonical ? canonical.href : null,
      declared: Boolean(declared),
      title: document.title,
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
    clearTimeout(reportTimer);
    clearInterval(mediaTimer);
  }

  for (const type of EVENTS) addEventListener(type, onInteraction, { capture: true, passive: true });
  document.addEventListener("playing", onPlaying, true);
  if (audibleMedia()) mediaTimer = setInterval(mediaTick, MEDIA_TICK_MS);
  addEventListener("blur", stopCounting);
  addEventListener("pagehide", stopCounting);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") stopCounting();
  });
})();
