/**
 * The two ends of a migration, through our storage drivers' public interfaces: `internal` files
 * (storage/drivers/internal.ts), SQL on SQLite (sql.js) or PostgreSQL (storage/drivers/sql.ts over
 * a SqlDatabase). Each end gives a StorageProvider per host, lists what it holds (for a config
 * without `hosts`), and tells whether it holds archive data, which our drivers cannot move.
 */
import { existsSync, statSync } from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { decode, encodeNode, encodeStore } from "../storage/lua/encode-path.js";
import { createInternalProvider, createInternalShared } from "../storage/drivers/internal.js";
import { createSqlProvider } from "../storage/drivers/sql.js";
import { openSqlDatabase, sqlTargetLabel, SqlDatabase } from "../storage/drivers/sql-database.js";
import { PgEngine } from "../storage/drivers/sql-pg.js";
import type { SqlRow } from "../storage/drivers/sql-engine.js";
import type { StorageProvider } from "../storage/types.js";
import type { StoreBackend, StoreEntry } from "./config.js";

/** host → entries, hosts and then stores sorted, keyval before archive. */
function sortedHosts(found: Map<string, Map<string, Set<string>>>): Map<string, StoreEntry[]> {
  const out = new Map<string, StoreEntry[]>();
  for (const host of [...found.keys()].sort()) {
    const stores = found.get(host)!;
    const entries: StoreEntry[] = [];
    for (const store of [...stores.keys()].sort()) for (const type of ["keyval", "archive"]) if (stores.get(store)!.has(type)) entries.push({ store, type });
    out.set(host, entries);
  }
  return out;
}

const note = (found: Map<string, Map<string, Set<string>>>, host: string, store: string, type: string) => {
  if (!found.has(host)) found.set(host, new Map());
  const stores = found.get(host)!;
  if (!stores.has(store)) stores.set(store, new Set());
  stores.get(store)!.add(type);
};

export interface Endpoint {
  /** Where the data is, for messages (never a password). */
  readonly label: string;
  provider(host: string): StorageProvider;
  /** Every host and the stores holding data there: keyval, and archive (hosts and stores sorted). */
  discover(): Promise<Map<string, StoreEntry[]>>;
  /** What archive data `store` (or, with `prefix`, every store whose name starts with it) holds on `host`; undefined: none. */
  archives(host: string, store: string, prefix?: boolean): Promise<string | undefined>;
  close(): Promise<void>;
}

/** Opens one end; `role` says whether it must already exist (input) or may be created (output). */
export async function openEndpoint(backend: StoreBackend, role: "input" | "output"): Promise<Endpoint> {
  return backend.type === "internal" ? internalEndpoint(backend.path, role) : sqlEndpoint(backend, role);
}

// --- internal ---

function internalEndpoint(dataPath: string, role: "input" | "output"): Endpoint {
  if (role === "input" && !(existsSync(dataPath) && statSync(dataPath).isDirectory())) {
    throw new Error(`data directory ${dataPath} does not exist`);
  }
  const shared = createInternalShared();
  const providers = new Map<string, StorageProvider>();
  const dirEntries = async (dir: string) => {
    try {
      return await fsp.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
  };
  return {
    label: dataPath,
    provider(host) {
      let p = providers.get(host);
      if (!p) providers.set(host, (p = createInternalProvider({ dataPath, host, shared })));
      return p;
    },
    async discover() {
      const found = new Map<string, Map<string, Set<string>>>();
      for (const h of await dirEntries(dataPath)) {
        // Dot entries are ours (.prosody-ts-locks); _global is Prosody's nil host, not a virtual host.
        if (!h.isDirectory() || h.name.startsWith(".") || h.name === "_global") continue;
        const host = decode(h.name);
        for (const e of await dirEntries(path.join(dataPath, h.name))) {
          if (e.isFile() && e.name.endsWith(".dat")) note(found, host, decode(e.name.slice(0, -4)), "keyval");
          else if (e.isFile() && e.name.endsWith(".list")) note(found, host, decode(e.name.slice(0, -5)), "archive");
          else if (e.isDirectory()) {
            const files = await dirEntries(path.join(dataPath, h.name, e.name));
            if (files.some((f) => f.name.endsWith(".dat"))) note(found, host, decode(e.name), "keyval");
            if (files.some((f) => f.name.endsWith(".list"))) note(found, host, decode(e.name), "archive");
          }
        }
      }
      return sortedHosts(found);
    },
    async archives(host, store, prefix = false) {
      const hostDir = path.join(dataPath, encodeNode(host));
      const start = encodeStore(store);
      const match = (name: string) => (prefix ? name.startsWith(start) : name === start);
      let files = 0;
      for (const e of await dirEntries(hostDir)) {
        if (e.isFile() && e.name.endsWith(".list") && match(e.name.slice(0, -5))) files++;
        else if (e.isDirectory() && match(e.name)) files += (await dirEntries(path.join(hostDir, e.name))).filter((f) => f.name.endsWith(".list")).length;
      }
      return files ? `${files} archive file${files === 1 ? "" : "s"} (.list)` : undefined;
    },
    async close() {},
  };
}

async function sqlEndpoint(backend: Extract<StoreBackend, { type: "sql" }>, role: "input" | "output"): Promise<Endpoint> {
  const { target } = backend;
  let db: SqlDatabase;
  if (target.driver === "SQLite3") {
    if (role === "input" && !existsSync(target.file)) throw new Error(`database file ${target.file} does not exist`);
    db = await openSqlDatabase(target.file);
  } else {
    db = await SqlDatabase.over(await PgEngine.open(target));
  }
  const providers = new Map<string, StorageProvider>();
  const rows = (sql: string, params: (string | number)[] = []) => Promise.resolve(db.engine.read((v) => v.all(sql, params))) as Promise<SqlRow[]>;
  return {
    label: sqlTargetLabel(target),
    provider(host) {
      let p = providers.get(host);
      if (!p) providers.set(host, (p = createSqlProvider({ host, db })));
      return p;
    },
    async discover() {
      const found = new Map<string, Map<string, Set<string>>>();
      for (const r of await rows(`SELECT DISTINCT "host", "store" FROM "prosody"`)) note(found, String(r.host), String(r.store), "keyval");
      for (const r of await rows(`SELECT DISTINCT "host", "store" FROM "prosodyarchive"`)) note(found, String(r.host), String(r.store), "archive");
      return sortedHosts(found);
    },
    async archives(host, store, prefix = false) {
      // Prefix match without LIKE, whose wildcards (_ and %) occur in store names.
      const [r] = prefix
        ? await rows(`SELECT COUNT(*) AS "n" FROM "prosodyarchive" WHERE "host"=? AND substr("store", 1, ?)=?`, [host, store.length, store])
        : await rows(`SELECT COUNT(*) AS "n" FROM "prosodyarchive" WHERE "host"=? AND "store"=?`, [host, store]);
      const n = Number(r?.n ?? 0);
      return n ? `${n} archive row${n === 1 ? "" : "s"}` : undefined;
    },
    async close() {
      // The SQLite file is left complete (journal folded in) unless another of our processes has it open.
      await db.close({ fold: target.driver === "SQLite3" && !(await db.engine.othersOpen()) });
    },
  };
}
