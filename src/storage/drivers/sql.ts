/**
 * SQL storage (Prosody's `mod_storage_sql`): keyval and map stores over the rows of table
 * "prosody", through a database engine (sql-engine.ts; sql.js today) held by a SqlDatabase
 * (sql-database.ts: who opens, shares and closes it).
 *
 * Rows are laid out exactly as Prosody 0.12 lays them out (see the model spec §2.5):
 * (host, user — "" for the host-wide record —, store, key, type, value). keyval and map are two
 * views of the same rows:
 * - keyval `set` = one atomic group: DELETE all rows of (host,user,store) + one INSERT per non-empty
 *   string key; the entry under key "" goes into a `key = ""` json row holding `{"": value}`; a
 *   sequence (array) is that row alone, holding the JSON array (Prosody's non-string keys).
 *   keyval `get` reads all rows and merges the `""` row's table in (a lone JSON array: the
 *   sequence itself); no rows → undefined.
 * - map `get` = SELECT type,value … LIMIT 1 (cached: sql-read-cache.ts); `set` = DELETE that key +
 *   INSERT (no INSERT to delete); the key "" lives inside the `""` row (read-modify-write in one
 *   atomic update).
 * - `users()` = SELECT DISTINCT user (so the host-wide record shows up as "", like Prosody).
 */
import { checkMapChangesOnSequence, cloneKeyval, copyStoreValue, setOwn, whereText, type Where } from "../values.js";
import {
  REMOVE,
  StorageError,
  type KeyvalData,
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
import type { SqlDatabase } from "./sql-database.js";
import type { SqlParam, SqlReadView, SqlRow, SqlStatement } from "./sql-engine.js";

export { PROSODY_SQLITE_DDL } from "./sql-sqljs.js";
export { openSqlDatabase, sqlTarget, type SqlDatabase } from "./sql-database.js";

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

/** Plain reads (no closure per call: see SqlEngine.read). */
const allRows = (view: SqlReadView, [sql, params]: SqlStatement) => view.all(sql, params);
const firstRow = (view: SqlReadView, [sql, params]: SqlStatement) => view.get(sql, params);

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

export function createSqlProvider(opts: { host: string; db: SqlDatabase }): StorageProvider {
  const { host, db } = opts;
  const { engine, cache } = db;
  const u = (user: string | null) => user ?? "";
  // Closures: the label is only formatted when an error is raised (these run once per request).
  const where = (store: string, user: string | null, key?: string) => () =>
    `SQL storage ${engine.label} (host ${JSON.stringify(host)}, store ${JSON.stringify(store)}, user ${user === null ? "nil" : JSON.stringify(user)}` +
    (key === undefined ? ")" : `, key ${JSON.stringify(key)})`);

  // Every write marks its store changed when it starts and again when it settles, so a map read
  // cached in between is never served after the write (see sql-read-cache.ts).
  const write = async <T>(store: string | undefined, run: () => Promise<T>): Promise<T> => {
    cache.bump(host, store);
    const started = db.onCommit ? performance.now() : 0;
    let ok = false;
    try {
      const result = await run();
      ok = true;
      return result;
    } finally {
      cache.bump(host, store);
      db.onCommit?.((performance.now() - started) / 1000, ok);
    }
  };

  const decodeRow = (row: { type?: unknown; value?: unknown }, store: string, user: string | null, key: string) =>
    decodeValue(row.type, row.value, where(store, user, key));

  const insertRow = (store: string, user: string | null, key: string, value: unknown): SqlStatement => {
    const enc = encodeValue(value, where(store, user, key));
    return [Q.insert, [host, u(user), store, key, enc.type, enc.value]];
  };

  /** The `""` row's table as read (`row`, maybe none), changed by `change`, as statements replacing it. */
  const rewriteExtra = (row: SqlRow | undefined, store: string, user: string | null, change: (extra: { [key: string]: StoreValue }) => void) => {
    const decoded = row ? decodeRow(row, store, user, "") : undefined;
    if (Array.isArray(decoded)) {
      // The row holds the record's positions (a sequence, or the integer keys of a mixed table):
      // rewritten as an object they would come back as string keys "1", "2"… So only a change
      // that adds nothing (removing the absent key "") passes, and writes nothing.
      const added: { [key: string]: StoreValue } = {};
      change(added);
      checkMapChangesOnSequence(Object.entries(added), where(store, user, ""));
      return [];
    }
    const extra = { ...extraAsObject(decoded, where(store, user, "")) };
    change(extra);
    const stmts: SqlStatement[] = [[Q.mapDelete, [host, u(user), store, ""]]];
    if (!isEmpty(extra)) stmts.push([Q.insert, [host, u(user), store, "", "json", encodeJson(extra)]]);
    return stmts;
  };

  function keyval(store: string): KeyvalStore {
    /** The INSERTs of a whole record (the entry under key "" goes into the `""` row). */
    const recordInserts = (user: string | null, rec: KeyvalData | undefined): SqlStatement[] => {
      const stmts: SqlStatement[] = [];
      if (!rec) return stmts;
      // A sequence has no string keys: Prosody writes all of it as the "" row, a JSON array.
      if (Array.isArray(rec)) return [[Q.insert, [host, u(user), store, "", "json", encodeJson(rec)]]];
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
        const rows = await engine.read(allRows, [Q.kvGet, [host, u(user), store]]);
        if (rows.length === 0) return undefined;
        const result: StoreRecord = {};
        let extra: StoreValue | undefined;
        let named = false; // kept here: a for-in over 100k keys (isEmpty) costs ~20 ms per read
        for (const row of rows) {
          const key = String(row.key);
          const v = decodeRow(row, store, user, key);
          if (key === "") extra = v;
          else if (v !== undefined) {
            setOwn(result, key, v);
            named = true;
          }
        }
        // Only positions (the "" row holds a JSON array, no other row): a sequence, as Prosody
        // reads it. With string keys beside them (a mixed table) the positions become "1", "2"…
        if (Array.isArray(extra) && !named) return extra.length ? extra : undefined;
        if (extra !== undefined) {
          for (const [k, v] of Object.entries(extraAsObject(extra, where(store, user, "")))) {
            setOwn(result, k, v);
            named = true;
          }
        }
        return named ? result : undefined;
      },
      async set(user, data) {
        const stmts: SqlStatement[] = [[Q.kvDelete, [host, u(user), store]], ...recordInserts(user, cloneKeyval(data, where(store, user)))];
        await write(store, () => engine.execute(stmts));
      },
      async setIfAbsent(user, data) {
        // Encoded first, so a bad value rejects before anything runs.
        const inserts = recordInserts(user, cloneKeyval(data, where(store, user)));
        return write(store, () =>
          engine.update({
            reads: [[Q.kvExists, [host, u(user), store]]],
            decide: ([existing]) => (existing!.length ? { run: [], result: false } : { run: inserts, result: true }),
          }),
        );
      },
      async users() {
        return (await engine.read(allRows, [Q.users, [host, store]])).map((r) => String(r.user));
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
    const reads = cache.store(host, store);
    const apply = async (user: string | null, changes: [string, unknown][]) => {
      if (!changes.some(([k]) => k === "")) {
        const stmts = changeStatements(user, changes);
        await write(store, () => engine.execute(stmts));
        return;
      }
      // The key "" lives inside the "" row: a read-modify-write. Encode outside first so a bad
      // value rejects before anything runs.
      const named = changeStatements(
        user,
        changes.filter(([k]) => k !== ""),
      );
      const emptyKey = changes.filter(([k]) => k === "").pop()![1];
      if (emptyKey !== undefined) encodeValue(emptyKey, where(store, user, ""));
      await write(store, () =>
        engine.update({
          reads: [[Q.mapGet, [host, u(user), store, ""]]],
          decide: ([rows]) => ({
            run: [
              ...named,
              ...rewriteExtra(rows![0], store, user, (extra) => {
                if (emptyKey === undefined) delete extra[""];
                else extra[""] = emptyKey as StoreValue;
              }),
            ],
            result: undefined,
          }),
        }),
      );
    };
    return {
      type: "map",
      async get(user, key) {
        if (key === "") {
          const row = await engine.read(firstRow, [Q.mapGet, [host, u(user), store, ""]]);
          if (!row) return undefined;
          const extra = extraAsObject(decodeRow(row, store, user, ""), where(store, user, ""));
          return Object.prototype.hasOwnProperty.call(extra, "") ? extra[""] : undefined;
        }
        const r = reads.row(`${u(user)}\0${key}`, Q.mapGet, [host, u(user), store, key]);
        const row = r instanceof Promise ? await r : r; // no extra turn for a synchronous engine
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
        // One atomic update under every writer's exclusion: of concurrent takes (any process) one sees the row.
        const params: SqlParam[] = [host, u(user), store, key];
        return write(store, () =>
          engine.update({
            reads: [[Q.mapGet, params]],
            decide: ([rows]): { run: SqlStatement[]; result: StoreValue | undefined } => {
              const row = rows![0];
              if (key !== "") {
                if (!row) return { run: [], result: undefined };
                return { run: [[Q.mapDelete, params]], result: decodeRow(row, store, user, key) };
              }
              let value: StoreValue | undefined;
              const run = rewriteExtra(row, store, user, (extra) => {
                if (!Object.prototype.hasOwnProperty.call(extra, "")) return;
                value = extra[""];
                delete extra[""];
              });
              return { run, result: value };
            },
          }),
        );
      },
      async getAll(key) {
        const out = new Map<string, StoreValue>();
        for (const row of await engine.read(allRows, [Q.getAll, [host, store, key]])) {
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
          await write(store, () => engine.execute([[Q.deleteAll, [host, store, key]]]));
          return;
        }
        await write(store, () =>
          engine.update({
            reads: [[Q.getAll, [host, store, ""]]],
            decide: ([rows]) => {
              // Each user's "" row rewritten once, without its "" entry (the first row read for it).
              const seen = new Set<string>();
              const run: SqlStatement[] = [];
              for (const row of rows!) {
                const user = String(row.user);
                if (seen.has(user)) continue;
                seen.add(user);
                run.push(...rewriteExtra(row, store, user === "" ? null : user, (extra) => delete extra[""]));
              }
              return { run, result: undefined };
            },
          }),
        );
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
        engine.execute([
          [Q.purge, [host, user]],
          [Q.purgeArchive, [host, user]],
        ]),
      );
    },
  };
}
