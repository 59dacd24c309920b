/**
 * SQL storage (Prosody's `mod_storage_sql` with SQLite3), over a DurableSqlite database.
 *
 * Rows live in table "prosody" exactly as Prosody 0.12 lays them out (see the model spec §2.5):
 * (host, user — "" for the host-wide record —, store, key, type, value). keyval and map are two
 * views of the same rows:
 * - keyval `set` = one atomic group: DELETE all rows of (host,user,store) + one INSERT per non-empty
 *   string key; the entry under key "" goes into a `key = ""` json row holding `{"": value}`.
 *   keyval `get` reads all rows and merges the `""` row's table in; no rows → undefined.
 * - map `get` = SELECT type,value … LIMIT 1; `set` = DELETE that key + INSERT (no INSERT to delete);
 *   the key "" lives inside the `""` row (read-modify-write in one transaction).
 * - `users()` = SELECT DISTINCT user (so the host-wide record shows up as "", like Prosody).
 */
import path from "node:path";
import { DurableSqlite, type DurableSqliteOptions, type DurableTx, type SqlParam, type SqlStatement } from "../sqlite/durable-db.js";
import { cloneRecord, copyStoreValue, whereText, type Where } from "../values.js";
import {
  REMOVE,
  StorageError,
  type KeyvalStore,
  type MapStore,
  type Remove,
  type StorageProvider,
  type Store,
  type StoreRecord,
  type StoreType,
  type StoreValue,
} from "../types.js";
import { decodeValue, encodeJson, encodeValue } from "./sql-codec.js";
import { ReadCache, localWritesOf, type CachedRow } from "./sql-read-cache.js";

/** Prosody 0.12.3's SQLite DDL, statement by statement, byte for byte. */
export const PROSODY_SQLITE_DDL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);`,
  `CREATE INDEX IF NOT EXISTS "prosody_index" ON "prosody" ("host", "user", "store", "key");`,
  `CREATE TABLE IF NOT EXISTS "prosodyarchive" ("sort_id" INTEGER PRIMARY KEY AUTOINCREMENT, "host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "when" INTEGER NOT NULL, "with" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);`,
  `CREATE UNIQUE INDEX IF NOT EXISTS "prosodyarchive_index" ON "prosodyarchive" ("host", "user", "store", "key");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_with_when" ON "prosodyarchive" ("host", "user", "store", "with", "when");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_when" ON "prosodyarchive" ("host", "user", "store", "when");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_sort" ON "prosodyarchive" ("host", "user", "store", "sort_id");`,
];
const SCHEMA_OBJECTS = [
  "prosody",
  "prosody_index",
  "prosodyarchive",
  "prosodyarchive_index",
  "prosodyarchive_with_when",
  "prosodyarchive_when",
  "prosodyarchive_sort",
];

const Q = {
  kvGet: `SELECT "key", "type", "value" FROM "prosody" WHERE "host"=? AND "user"=? AND "store"=?`,
  kvDelete: `DELETE FROM "prosody" WHERE "host"=? AND "user"=? AND "store"=?`,
  kvExists: `SELECT 1 FROM "prosody" WHERE "host"=? AND "user"=? AND "store"=? LIMIT 1`,
  insert: `INSERT INTO "prosody" ("host", "user", "store", "key", "type", "value") VALUES (?, ?, ?, ?, ?, ?)`,
  mapGet: `SELECT "type", "value" FROM "prosody" WHERE "host"=? AND "user"=? AND "store"=? AND "key"=? LIMIT 1`,
  mapDelete: `DELETE FROM "prosody" WHERE "host"=? AND "user"=? AND "store"=? AND "key"=?`,
  getAll: `SELECT "user", "type", "value" FROM "prosody" WHERE "host"=? AND "store"=? AND "key"=?`,
  deleteAll: `DELETE FROM "prosody" WHERE "host"=? AND "store"=? AND "key"=?`,
  users: `SELECT DISTINCT "user" FROM "prosody" WHERE "host"=? AND "store"=?`,
  purge: `DELETE FROM "prosody" WHERE "host"=? AND "user"=?`,
  purgeArchive: `DELETE FROM "prosodyarchive" WHERE "host"=? AND "user"=?`,
} as const;

/**
 * The SQLite file a host's `sql` option names (Prosody: `database`, relative to data_path, default
 * "prosody.sqlite"), or an error text for a driver other than SQLite3.
 */
export function sqlDatabaseFile(params: unknown, dataDir: string): { file: string } | { error: string } {
  const p = params && typeof params === "object" && !Array.isArray(params) ? (params as Record<string, unknown>) : {};
  const driver = typeof p.driver === "string" ? p.driver : "SQLite3";
  if (driver !== "SQLite3") return { error: `sql driver ${JSON.stringify(driver)} is not supported by this host (only SQLite3)` };
  const database = typeof p.database === "string" && p.database !== "" ? p.database : "prosody.sqlite";
  return { file: path.resolve(dataDir, database) };
}

// ------------------------------------------------------------------------------------------------
// One DurableSqlite per database file per process (Prosody: one connection per DB URI).

const registry = new Map<string, Promise<DurableSqlite>>();

/**
 * Opens (sharing within this process) the SQLite database `file` and creates Prosody's tables and
 * indexes if missing. Options only apply to the first open of a file. Closing the returned database
 * closes it for every user in the process (the next openSqlDatabase opens it afresh).
 */
export async function openSqlDatabase(file: string, opts?: DurableSqliteOptions): Promise<DurableSqlite> {
  const abs = path.resolve(file);
  for (;;) {
    let p = registry.get(abs);
    if (!p) {
      p = (async () => {
        const db = await DurableSqlite.open(abs, opts);
        try {
          await ensureSchema(db);
        } catch (err) {
          await db.close().catch(() => {});
          throw err;
        }
        return db;
      })();
      registry.set(abs, p);
      p.catch(() => {
        if (registry.get(abs) === p) registry.delete(abs);
      });
    }
    const db = await p;
    if (!db.isClosing) return db;
    if (registry.get(abs) === p) registry.delete(abs);
    await db.close().catch(() => {}); // let it finish (and release the lock) before reopening
  }
}

async function ensureSchema(db: DurableSqlite): Promise<void> {
  const present = new Set(db.all(`SELECT "name" FROM "sqlite_master"`).map((r) => r.name));
  if (SCHEMA_OBJECTS.every((n) => present.has(n))) return;
  await db.execute(PROSODY_SQLITE_DDL.map((sql) => [sql] as SqlStatement));
}

// ------------------------------------------------------------------------------------------------

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

/** The `""` row's table as an object (a Lua sequence becomes keys "1".."n"). */
function extraAsObject(v: StoreValue | undefined, where: Where): { [key: string]: StoreValue } {
  if (v === undefined) return {};
  if (Array.isArray(v)) {
    const o: { [key: string]: StoreValue } = {};
    v.forEach((item, i) => (o[String(i + 1)] = item));
    return o;
  }
  if (typeof v !== "object") throw new StorageError(`${whereText(where)}: the "" row must hold a table, not a ${typeof v}`);
  return v;
}

export function createSqlProvider(opts: { host: string; db: DurableSqlite }): StorageProvider {
  const { host, db } = opts;
  const u = (user: string | null) => user ?? "";
  // Closures: the label is only formatted when an error is raised (these run once per request).
  const where = (store: string, user: string | null, key?: string) => () =>
    `SQL storage ${db.file} (host ${JSON.stringify(host)}, store ${JSON.stringify(store)}, user ${user === null ? "nil" : JSON.stringify(user)}` +
    (key === undefined ? ")" : `, key ${JSON.stringify(key)})`);

  // Every write marks its store changed when it starts and again when it settles, so a map read
  // cached in between is never served after the write (see sql-read-cache.ts).
  const writes = localWritesOf(db);
  const write = async <T>(store: string | undefined, run: () => Promise<T>): Promise<T> => {
    writes.bump(host, store);
    try {
      return await run();
    } finally {
      writes.bump(host, store);
    }
  };

  const decodeRow = (row: { type?: unknown; value?: unknown }, store: string, user: string | null, key: string) =>
    decodeValue(row.type, row.value, where(store, user, key));

  const insertRow = (store: string, user: string | null, key: string, value: unknown): SqlStatement => {
    const enc = encodeValue(value, where(store, user, key));
    return [Q.insert, [host, u(user), store, key, enc.type, enc.value]];
  };

  /** Read-modify-write of the `""` row inside a transaction. */
  const rewriteExtra = (tx: DurableTx, store: string, user: string | null, change: (extra: { [key: string]: StoreValue }) => void) => {
    const params: SqlParam[] = [host, u(user), store, ""];
    const row = tx.get(Q.mapGet, params);
    const extra = { ...extraAsObject(row ? decodeRow(row, store, user, "") : undefined, where(store, user, "")) };
    change(extra);
    tx.run(Q.mapDelete, params);
    if (!isEmpty(extra)) tx.run(Q.insert, [host, u(user), store, "", "json", encodeJson(extra)]);
  };

  function keyval(store: string): KeyvalStore {
    /** The INSERTs of a whole record (the entry under key "" goes into the `""` row). */
    const recordInserts = (user: string | null, rec: StoreRecord | undefined): SqlStatement[] => {
      const stmts: SqlStatement[] = [];
      if (!rec) return stmts;
      for (const key of Object.keys(rec)) {
        if (key === "") continue;
        stmts.push(insertRow(store, user, key, rec[key]));
      }
      if (Object.prototype.hasOwnProperty.call(rec, "")) {
        stmts.push([Q.insert, [host, u(user), store, "", "json", encodeJson({ "": rec[""]! })]]);
      }
      return stmts;
    };
    return {
      type: "keyval",
      async get(user) {
        const rows = db.all(Q.kvGet, [host, u(user), store]);
        if (rows.length === 0) return undefined;
        const result: StoreRecord = {};
        let extra: StoreValue | undefined;
        for (const row of rows) {
          const key = String(row.key);
          const v = decodeRow(row, store, user, key);
          if (key === "") extra = v;
          else if (v !== undefined) result[key] = v;
        }
        if (extra !== undefined) Object.assign(result, extraAsObject(extra, where(store, user, "")));
        return isEmpty(result) ? undefined : result;
      },
      async set(user, data) {
        const stmts: SqlStatement[] = [[Q.kvDelete, [host, u(user), store]], ...recordInserts(user, cloneRecord(data, where(store, user)))];
        await write(store, () => db.execute(stmts));
      },
      async setIfAbsent(user, data) {
        // Encoded first, so a bad value rejects before anything runs.
        const inserts = recordInserts(user, cloneRecord(data, where(store, user)));
        return write(store, () =>
          db.transaction((tx) => {
            if (tx.get(Q.kvExists, [host, u(user), store])) return false;
            for (const [sql, params] of inserts) tx.run(sql, params);
            return true;
          }),
        );
      },
      async users() {
        return db.all(Q.users, [host, store]).map((r) => String(r.user));
      },
    };
  }

  function map(store: string): MapStore {
    const norm = (v: unknown): unknown => (v === REMOVE || v === null ? undefined : v);
    const changeStatements = (user: string | null, changes: [string, unknown][]): SqlStatement[] => {
      const stmts: SqlStatement[] = [];
      for (const [key, value] of changes) {
        stmts.push([Q.mapDelete, [host, u(user), store, key]]);
        if (value !== undefined) stmts.push(insertRow(store, user, key, value));
      }
      return stmts;
    };
    const cache = new ReadCache();
    const apply = async (user: string | null, changes: [string, unknown][]) => {
      if (!changes.some(([k]) => k === "")) {
        const stmts = changeStatements(user, changes);
        await write(store, () => db.execute(stmts));
        return;
      }
      // The key "" lives inside the "" row: needs a read under the lock. Encode outside first so a
      // bad value rejects before anything runs.
      const named = changeStatements(
        user,
        changes.filter(([k]) => k !== ""),
      );
      const emptyKey = changes.filter(([k]) => k === "").pop()![1];
      if (emptyKey !== undefined) encodeValue(emptyKey, where(store, user, ""));
      await write(store, () => db.transaction((tx) => {
        for (const [sql, params] of named) tx.run(sql, params);
        rewriteExtra(tx, store, user, (extra) => {
          if (emptyKey === undefined) delete extra[""];
          else extra[""] = emptyKey as StoreValue;
        });
      }));
    };
    return {
      type: "map",
      async get(user, key) {
        if (key === "") {
          const row = db.get(Q.mapGet, [host, u(user), store, ""]);
          if (!row) return undefined;
          const extra = extraAsObject(decodeRow(row, store, user, ""), where(store, user, ""));
          return Object.prototype.hasOwnProperty.call(extra, "") ? extra[""] : undefined;
        }
        const ck = `${u(user)}\0${key}`;
        const row = db.read((view): CachedRow | undefined => {
          const version = writes.version(host, store);
          const hit = cache.lookup(ck, view.foreign, version);
          if (hit) return hit.row;
          const r = view.get(Q.mapGet, [host, u(user), store, key]);
          const fresh = r && { type: r.type, value: r.value };
          cache.remember(ck, view.foreign, version, fresh);
          return fresh;
        });
        if (!row) return undefined;
        // Decoded once per cached row (a decoding error is thrown again on every read, not kept).
        row.decoded ??= { value: decodeRow(row, store, user, key) };
        const v = row.decoded.value;
        return v === undefined ? undefined : copyStoreValue(v);
      },
      async set(user, key, value) {
        await apply(user, [[key, norm(value)]]);
      },
      async setKeys(user, changes: Record<string, StoreValue | Remove>) {
        await apply(
          user,
          Object.keys(changes).map((k) => [k, norm(changes[k])]),
        );
      },
      async take(user, key) {
        // One transaction under the write lock: of concurrent takes (any process) one sees the row.
        return write(store, () =>
          db.transaction((tx): StoreValue | undefined => {
            const params: SqlParam[] = [host, u(user), store, key];
            if (key !== "") {
              const row = tx.get(Q.mapGet, params);
              if (!row) return undefined;
              const value = decodeRow(row, store, user, key);
              tx.run(Q.mapDelete, params);
              return value;
            }
            let value: StoreValue | undefined;
            rewriteExtra(tx, store, user, (extra) => {
              if (!Object.prototype.hasOwnProperty.call(extra, "")) return;
              value = extra[""];
              delete extra[""];
            });
            return value;
          }),
        );
      },
      async getAll(key) {
        const out = new Map<string, StoreValue>();
        for (const row of db.all(Q.getAll, [host, store, key])) {
          const user = String(row.user);
          let v = decodeRow(row, store, user === "" ? null : user, key);
          if (key === "") {
            const extra = extraAsObject(v, where(store, user, ""));
            v = Object.prototype.hasOwnProperty.call(extra, "") ? extra[""] : undefined;
          }
          if (v !== undefined) out.set(user, v);
        }
        return out;
      },
      async deleteAll(key) {
        if (key !== "") {
          await write(store, () => db.execute([[Q.deleteAll, [host, store, key]]]));
          return;
        }
        await write(store, () => db.transaction((tx) => {
          for (const row of tx.all(Q.getAll, [host, store, ""])) {
            const user = String(row.user);
            rewriteExtra(tx, store, user === "" ? null : user, (extra) => delete extra[""]);
          }
        }));
      },
    };
  }

  return {
    name: "sql",
    open(store: string, type: StoreType): Store | undefined {
      if (type === "keyval") return keyval(store);
      if (type === "map") return map(store);
      return undefined;
    },
    async purge(user: string) {
      await write(undefined, () =>
        db.execute([
          [Q.purge, [host, user]],
          [Q.purgeArchive, [host, user]],
        ]),
      );
    },
  };
}
