/**
 * A small cache of map-store reads for the SQL driver, owned by the SqlDatabase (one per database
 * per owner).
 *
 * Why: a map `get` through sql.js (bind, step, copy the row out of WebAssembly) costs more than the
 * rest of a typical request, and some keys are read on every request (an API key) while written
 * almost never. A cached entry holds the row's raw `type`/`value` text and, once read, its decoded
 * value; every hit hands out a fresh deep copy of that (callers can never share or mutate a cached
 * object), which is cheaper than decoding again. An entry is valid only while
 * - the engine has taken in no change from elsewhere (`SqlReadView.foreignChanges`, read in the
 *   same read() as the row: a key deleted by prosodyctl is gone for the server at once), and
 * - no write to the same (host, store) was started or finished by this owner since it was read
 *   (`bump`, called by the driver when a write starts and when it settles).
 */
import type { StoreValue } from "../types.js";
import type { Awaitable, SqlEngine, SqlParam, SqlReadView, SqlRow } from "./sql-engine.js";

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
/** Entries kept per (host, store). */
const MAX_ENTRIES = 256;

/** The cached map reads of one (host, store), least recently stored first. */
export class StoreReads {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly owner: SqlReadCache,
    /** `host \0 store`, made once (a lookup with the same string object is cheaper). */
    readonly id: string,
    readonly host: string,
  ) {}

  /**
   * The row `sql` selects (at most one), from the cache when nothing changed since it was read.
   * `key` identifies the row within the store. The change checks and the query happen in one
   * engine read, so a row is never cached under a state older than the one it was read in.
   */
  row(key: string, sql: string, params: readonly SqlParam[]): Awaitable<CachedRow | undefined> {
    return this.owner.engine.read(readRow, { reads: this, key, version: this.owner.version(this), sql, params });
  }

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
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { foreign, version, row });
  }
}

export class SqlReadCache {
  private clock = 0;
  /** When each (host, store), and each host as a whole (purge), was last written by this owner. */
  private readonly stores = new Map<string, number>();
  private readonly hosts = new Map<string, number>();
  private readonly caches = new Map<string, StoreReads>();

  constructor(readonly engine: SqlEngine) {}

  /** The cached reads of (host, store), shared by every store object opened on it. */
  store(host: string, store: string): StoreReads {
    const id = host + "\0" + store;
    let reads = this.caches.get(id);
    if (!reads) this.caches.set(id, (reads = new StoreReads(this, id, host)));
    return reads;
  }

  /** Marks (host, store) — or every store of `host` when `store` is omitted — as changed. */
  bump(host: string, store?: string): void {
    const t = ++this.clock;
    if (store === undefined) this.hosts.set(host, t);
    else this.stores.set(host + "\0" + store, t);
  }

  /** A number that changes whenever the store of `reads` is bumped. */
  version(reads: StoreReads): number {
    return Math.max(this.stores.get(reads.id) ?? 0, this.hosts.get(reads.host) ?? 0);
  }
}

interface RowRead {
  reads: StoreReads;
  key: string;
  version: number;
  sql: string;
  params: readonly SqlParam[];
}

function readRow(view: SqlReadView, q: RowRead): Awaitable<CachedRow | undefined> {
  const foreign = view.foreignChanges;
  const hit = q.reads.lookup(q.key, foreign, q.version);
  if (hit) return hit.row;
  const keep = (r: SqlRow | undefined): CachedRow | undefined => {
    const row = r && { type: r.type, value: r.value };
    q.reads.remember(q.key, foreign, q.version, row);
    return row;
  };
  const r = view.get(q.sql, q.params);
  return r instanceof Promise ? r.then(keep) : keep(r);
}
