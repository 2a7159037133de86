// A hand-written fake of the WebExtension APIs the extension's modules use, and of fetch,
// so that their logic runs under `node --test` without a browser. Install it before the
// modules are imported (they read globalThis.chrome when loaded): use `await import()`.

function area() {
  let items = {};
  return {
    async get(keys) {
      if (keys === null || keys === undefined) return structuredClone(items);
      const names = typeof keys === "string" ? [keys] : keys;
      return Object.fromEntries(names.filter((n) => n in items).map((n) => [n, structuredClone(items[n])]));
    },
    async set(values) {
      items = { ...items, ...structuredClone(values) };
    },
    async remove(keys) {
      for (const name of typeof keys === "string" ? [keys] : keys) delete items[name];
    },
    async clear() {
      items = {};
    },
    peek() {
      return items;
    },
  };
}

/** An event (runtime.onMessage, ...) whose listeners a test can call. */
function event() {
  const listeners = [];
  return {
    listeners,
    addListener(listener) { listeners.push(listener); },
    hasListener(listener) { return listeners.includes(listener); },
  };
}

export function installFakeBrowser() {
  const granted = { permissions: new Set(), origins: new Set(["http://127.0.0.1/*"]) };
  const badges = new Map();
  const alarms = new Map();
  const tabs = new Map();
  const requests = [];
  let answer = () => ({ status: 200, body: {} });

  const fake = {
    storage: { local: area(), session: area(), onChanged: event() },
    permissions: {
      async contains({ permissions = [], origins = [] }) {
        return permissions.every((p) => granted.permissions.has(p))
          && origins.every((o) => granted.origins.has(o));
      },
      onRemoved: event(),
    },
    action: {
      async setBadgeText({ tabId, text }) { badges.set(tabId, { ...badges.get(tabId), text }); },
      async setBadgeBackgroundColor({ tabId, color }) {
        badges.set(tabId, { ...badges.get(tabId), color });
      },
      async setBadgeTextColor() {},
      async setTitle({ tabId, title }) { badges.set(tabId, { ...badges.get(tabId), title }); },
    },
    alarms: {
      async create(name, info) { alarms.set(name, { name, ...info }); },
      async clear(name) { return alarms.delete(name); },
      async get(name) { return alarms.get(name); },
      onAlarm: event(),
    },
    tabs: {
      async get(id) {
        if (!tabs.has(id)) throw new Error(`no tab ${id}`);
        return tabs.get(id);
      },
      async query() { return [...tabs.values()]; },
      async create({ url, active = true }) {
        const tab = { id: 1000 + tabs.size, url, active };
        tabs.set(tab.id, tab);
        return tab;
      },
      onUpdated: event(),
      onRemoved: event(),
    },
    scripting: {
      async executeScript() { throw new Error("no scripting in the fake"); },
      async getRegisteredContentScripts() { return []; },
      async registerContentScripts() {},
      async unregisterContentScripts() {},
    },
    contextMenus: {
      items: [],
      async removeAll() { this.items = []; },
      create(item) { this.items.push(item); },
      onClicked: event(),
    },
    commands: { onCommand: event() },
    runtime: {
      id: "fake", getURL: (path) => `chrome-extension://fake/${path}`,
      onMessage: event(), onInstalled: event(), async openOptionsPage() {},
    },
  };
  globalThis.chrome = fake;
  globalThis.fetch = async (url, init = {}) => {
    const request = { url: String(url), method: init.method ?? "GET", headers: init.headers ?? {},
      body: init.body ? JSON.parse(init.body) : null, storedQueue: structuredClone(fake.storage.local.peek().queue ?? []) };
    requests.push(request);
    const reply = await answer(request);
    if (reply === "offline") throw new TypeError("Failed to fetch");
    return new Response(JSON.stringify(reply.body ?? {}), {
      status: reply.status, headers: { "Content-Type": "application/json", ...(reply.headers ?? {}) },
    });
  };
  return {
    fake, granted, badges, alarms, tabs, requests,
    answerWith(handler) { answer = handler; },
    async reset() {
      await fake.storage.local.clear();
      await fake.storage.session.clear();
      requests.length = 0;
      badges.clear();
      alarms.clear();
      tabs.clear();
      granted.permissions.clear();
      answer = () => ({ status: 200, body: {} });
    },
  };
}

export const AUTH = {
  gateway: "http://127.0.0.1:8080", token: "secret-token", tokenId: 7, handle: "reader",
  scopes: ["flattr", "read"],
};


/** Let every pending promise chain run (after a fake timer fired), on real macrotasks. */
export async function settle(rounds = 50) {
  for (let i = 0; i < rounds; i += 1) await new Promise((resolve) => setImmediate(resolve));
}
