/**
 * A small cache of map-store reads for the SQL driver.
 *
 * Why: a map `get` through sql.js (bind, step, copy the row out of WebAssembly) costs more than the
 * rest of a typical request, and some keys are read on every request (an API key) while written
 * almost never. A cached entry holds the row's raw `type`/`value` text and, once read, its decoded
 * value; every hit hands out a fresh deep copy of that (callers can never share or mutate a cached
 * object), which is cheaper than decoding again. An entry is valid only while
 * - the database has taken in no change from another process (`DurableSqlite.foreignChanges()`,
 *   which also does the same freshness check a read does, so a key deleted by prosodyctl is gone
 *   for the server at once), and
 * - no write to the same (host, store) was started or finished in this process since it was read
 *   (`LocalWrites`, shared by every provider using the database).
 */
import type { DurableSqlite } from "../sqlite/durable-db.js";
import type { StoreValue } from "../types.js";

/** Per database: counters moved by every local write, per (host, store) and per host (purge). */
export class LocalWrites {
  private clock = 0;
  private readonly stores = new Map<string, number>();
  private readonly hosts = new Map<string, number>();

  /** Marks (host, store) — or every store of `host` when `store` is omitted — as changed. */
  bump(host: string, store?: string): void {
    const t = ++this.clock;
    if (store === undefined) this.hosts.set(host, t);
    else this.stores.set(host + "\0" + store, t);
  }

  /** A number that changes whenever (host, store) is bumped. */
  version(host: string, store: string): number {
    return Math.max(this.stores.get(host + "\0" + store) ?? 0, this.hosts.get(host) ?? 0);
  }
}

const registry = new WeakMap<DurableSqlite, LocalWrites>();

export function localWritesOf(db: DurableSqlite): LocalWrites {
  let w = registry.get(db);
  if (!w) registry.set(db, (w = new LocalWrites()));
  return w;
}

/** A row as stored (`undefined` = no row), for one cache key. */
export interface CachedRow {
  type: unknown;
  value: unknown;
  /** The decoded value, once a read has decoded it (never handed out itself: copy it). */
  decoded?: { value: StoreValue | undefined };
}

interface Entry {
  foreign: number;
  version: number;
  row: CachedRow | undefined;
}

/** Values above this size are not kept (a cache for small, hot records). */
const MAX_VALUE_CHARS = 16 * 1024;

export class ReadCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = 256) {}

  /** The cached row (`null` = not cached or stale; `{ row: undefined }` = known absent). */
  lookup(key: string, foreign: number, version: number): { row: CachedRow | undefined } | null {
    const e = this.entries.get(key);
    if (!e) return null;
    if (e.foreign !== foreign || e.version !== version) {
      this.entries.delete(key);
      return null;
    }
    return e;
  }

  remember(key: string, foreign: number, version: number, row: CachedRow | undefined): void {
    if (row && typeof row.value === "string" && row.value.length > MAX_VALUE_CHARS) return;
    this.entries.delete(key); // re-insert at the end: Map order is the eviction order
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { foreign, version, row });
  }
}
