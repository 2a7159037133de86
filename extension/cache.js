// Small key-per-entry caches in storage.session (in memory, gone when the browser closes).
// One key per entry, so that concurrent writers never lose each other's updates; each cache
// keeps at most `limit` entries, the most recently written.
import { ext } from "./browser.js";

const PRUNE_EVERY_WRITES = 25;

export class SessionCache {
  constructor(prefix, limit) {
    this.prefix = prefix;
    this.limit = limit;
    this.writes = 0;
  }

  async get(name) {
    const key = this.prefix + name;
    const found = await ext.storage.session.get(key);
    return found[key] ?? null;
  }

  async set(name, value) {
    await ext.storage.session.set({ [this.prefix + name]: { ...value, writtenAt: Date.now() } });
    this.writes += 1;
    if (this.writes % PRUNE_EVERY_WRITES === 0) await this.prune();
  }

  async remove(name) {
    await ext.storage.session.remove(this.prefix + name);
  }

  async prune() {
    const everything = await ext.storage.session.get(null);
    const mine = Object.entries(everything).filter(([key]) => key.startsWith(this.prefix));
    if (mine.length <= this.limit) return;
    mine.sort(([, a], [, b]) => (b.writtenAt ?? 0) - (a.writtenAt ?? 0));
    await ext.storage.session.remove(mine.slice(this.limit).map(([key]) => key));
  }
}
