// The WebExtension namespace: Firefox's promise-based `browser`, else Chromium's `chrome`
// (whose MV3 APIs return promises too). Every module takes the APIs from here.
export const ext = globalThis.browser ?? globalThis.chrome;
