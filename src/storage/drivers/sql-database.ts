/**
 * Who owns an SQL database, and for how long.
 *
 * One owner per runtime: `SqlDatabases`, kept in the runtime's shared table SQL_DATABASES_TABLE,
 * opens each database (one per `sql` target) once and hands out leases on it: `storage_sql` on each
 * host holds one. The database (engine, schema, read cache and its write counters, the engine's
 * "open" marker) lives until the last lease is released; that release decides whether to fold (the
 * server always does; prosodyctl only when no other process has the database open). Two runtimes in
 * one process each have their own: stopping one never closes the other's database.
 *
 * The engine is chosen by the `sql` option's `driver` (sqlTarget): SQLite3 on sql.js
 * (sql-sqljs.ts), PostgreSQL through `pg` (sql-pg.ts).
 */
import path from "node:path";
import type { DurableSqliteOptions } from "../sqlite/durable-db.js";
import { SnapshotWorker } from "../sqlite/snapshot-client.js";
import type { SqlEngine } from "./sql-engine.js";
import { PG_DEFAULT_HOST, PG_DEFAULT_PORT, PgEngine, SqlConfigError, type PgTarget } from "./sql-pg.js";
import { SqlReadCache } from "./sql-read-cache.js";
import { SqljsEngine } from "./sql-sqljs.js";

/** Where the runtime keeps its SqlDatabases (a `shared()` table path). */
export const SQL_DATABASES_TABLE = "/*/sql/databases";

/** The database a host's `sql` option names. */
export type SqlTarget = { driver: "SQLite3"; file: string } | ({ driver: "PostgreSQL" } & PgTarget);

/**
 * The database a host's `sql` option names, or an error text for an unsupported driver. Prosody's
 * options: `driver` (default "SQLite3"); SQLite3: `database`, relative to data_path, default
 * "prosody.sqlite"; PostgreSQL: `database`, `username`, `password`, `host`, `port` (unset: libpq's
 * defaults, see sql-pg.ts).
 */
export function sqlTarget(params: unknown, dataDir: string): SqlTarget | { error: string } {
  const p = params && typeof params === "object" && !Array.isArray(params) ? (params as Record<string, unknown>) : {};
  const driver = typeof p.driver === "string" ? p.driver : "SQLite3";
  const text = (k: string) => (typeof p[k] === "string" && p[k] !== "" ? (p[k] as string) : undefined);
  if (driver === "PostgreSQL") {
    const port = typeof p.port === "number" ? p.port : typeof p.port === "string" && /^\d+$/.test(p.port) ? Number(p.port) : undefined;
    const t: SqlTarget = { driver };
    for (const k of ["database", "username", "password", "host"] as const) if (text(k) !== undefined) t[k] = text(k);
    if (port !== undefined) t.port = port;
    return t;
  }
  if (driver !== "SQLite3") return { error: `sql driver ${JSON.stringify(driver)} is not supported by this host (only SQLite3 and PostgreSQL)` };
  return { driver, file: path.resolve(dataDir, text("database") ?? "prosody.sqlite") };
}

/** The database in messages: its file, or its address (never its password). */
export function sqlTargetLabel(t: SqlTarget): string {
  if (t.driver === "SQLite3") return t.file;
  // Unset host and port are libpq's defaults: the label names where we actually connect.
  return `PostgreSQL ${t.username ? `${t.username}@` : ""}${t.host ?? PG_DEFAULT_HOST}:${t.port ?? PG_DEFAULT_PORT}/${t.database ?? ""}`;
}

/**
 * Engine options: what DurableSqlite takes (the snapshot worker is the owner's), and
 * `manageTables`: Prosody's `sql_manage_tables` (default true). False: our tables are never
 * created; they must exist (made by an admin or by Prosody), else the open fails with
 * SqlConfigError naming the option.
 */
export type SqlOpenOptions = Omit<DurableSqliteOptions, "snapshots"> & { manageTables?: boolean };

/** A database in use: its engine, and the state every host's provider on it shares. */
export class SqlDatabase<E extends SqlEngine = SqlEngine> {
  /** Map reads cached for every provider on this database, with this owner's write counters. */
  readonly cache: SqlReadCache;
  /** Told after each write (seconds it took, whether it committed): metrics, set by mod_storage_sql. */
  onCommit: ((seconds: number, ok: boolean) => void) | undefined;
  private closing: Promise<void> | undefined;

  private constructor(readonly engine: E) {
    this.cache = new SqlReadCache(engine);
  }

  /**
   * Wraps an open engine, creating Prosody's tables if missing, or with `manageTables: false`
   * checking that they exist (the engine is closed on failure).
   */
  static async over<E extends SqlEngine>(engine: E, opts: { manageTables?: boolean } = {}): Promise<SqlDatabase<E>> {
    try {
      if (opts.manageTables !== false) await engine.ensureSchema();
      else await requireTables(engine);
    } catch (err) {
      await engine.close({ fold: false }).catch(() => {});
      throw err;
    }
    return new SqlDatabase(engine);
  }

  /** Closes the engine (once); `fold`: see SqlEngine.close. */
  close(opts: { fold?: boolean } = {}): Promise<void> {
    return (this.closing ??= this.engine.close({ fold: opts.fold === true }));
  }
}

/** Our two tables, as Prosody names them. */
const TABLES = ["prosody", "prosodyarchive"] as const;

/** With sql_manage_tables = false: the tables must be there, as Prosody then assumes too. */
async function requireTables(engine: SqlEngine): Promise<void> {
  for (const table of TABLES) {
    try {
      await engine.read((view) => view.get(`SELECT 1 FROM "${table}" LIMIT 1`));
    } catch (err) {
      if (err instanceof Error && err.name === "StorageUnavailableError") throw err;
      throw new SqlConfigError(`${engine.label}: table "${table}" is missing and sql_manage_tables = false (create Prosody's tables, or let us: remove the option)`, { cause: err });
    }
  }
}

/**
 * Opens the SQLite database `file` with Prosody's tables, owned by the caller (tests, tools): no
 * registry, no lease; `close({ fold: true })` leaves a complete SQLite file.
 */
export function openSqlDatabase(file: string, opts?: DurableSqliteOptions): Promise<SqlDatabase<SqljsEngine>> {
  return SqljsEngine.open(path.resolve(file), opts).then((engine) => SqlDatabase.over(engine));
}

/** A hold on a database: it stays open until every lease on it is released. */
export interface SqlLease {
  readonly database: SqlDatabase;
  /** Gives the hold up (once); the last one closes the database. */
  release(): Promise<void>;
}

interface Entry {
  database: Promise<SqlDatabase>;
  leases: number;
}

/** The SQL databases of one runtime (see the header). */
export class SqlDatabases {
  private readonly entries = new Map<string, Entry>();
  /** Closes in progress, by key: a database is reopened only once its previous close is over. */
  private readonly closing = new Map<string, Promise<void>>();
  /** The compaction worker shared by these databases (started on first use, ended with the last). */
  private snapshots: SnapshotWorker | undefined;

  constructor(private readonly processType: "server" | "prosodyctl") {}

  /**
   * Opens the database now (or finds it open) without taking a lease: at start, so that a refused
   * database stops the process before any module loads. It stays open until leased and released,
   * or discarded.
   */
  async open(target: SqlTarget, opts: SqlOpenOptions = {}): Promise<SqlDatabase> {
    return this.entry(target, opts).database;
  }

  /** A lease on the database (opened if needed). */
  async lease(target: SqlTarget, opts: SqlOpenOptions = {}): Promise<SqlLease> {
    const e = this.entry(target, opts);
    e.leases++;
    let database: SqlDatabase;
    try {
      database = await e.database;
    } catch (err) {
      e.leases--;
      throw err;
    }
    let released = false;
    return {
      database,
      release: async () => {
        if (released) return;
        released = true;
        if (--e.leases === 0) await this.closeEntry(target, e, "as-last");
      },
    };
  }

  /** Closes an unleased database opened by open() (start-up failed elsewhere), without folding. */
  async discard(target: SqlTarget): Promise<void> {
    const e = this.entries.get(keyOf(target));
    if (e && e.leases === 0) await this.closeEntry(target, e, "no-fold");
  }

  private entry(target: SqlTarget, opts: SqlOpenOptions): Entry {
    const key = keyOf(target);
    let e = this.entries.get(key);
    if (e) return e;
    const previous = this.closing.get(key);
    const snapshots = (this.snapshots ??= new SnapshotWorker());
    const entry: Entry = {
      leases: 0,
      database: (async () => {
        await previous; // let it finish (and release the lock) before reopening
        const { manageTables, ...engineOpts } = opts;
        if (target.driver === "PostgreSQL") return SqlDatabase.over(await PgEngine.open(target, engineOpts), { manageTables });
        // prosodyctl runs one command and exits: its copy of the database is opened in place.
        const workingCopy = this.processType === "server" ? "memory" : "in-place";
        return SqlDatabase.over(await SqljsEngine.open(target.file, { workingCopy, ...engineOpts, snapshots }), { manageTables });
      })(),
    };
    entry.database.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
      this.endWorkerIfIdle();
    });
    this.entries.set(key, entry);
    return entry;
  }

  private async closeEntry(target: SqlTarget, e: Entry, how: "as-last" | "no-fold"): Promise<void> {
    const key = keyOf(target);
    if (this.entries.get(key) !== e) return;
    this.entries.delete(key);
    const done = (async () => {
      const database = await e.database;
      // The last of our processes to close the database leaves it complete (sql.js: folds the
      // journal into the SQLite file) for a real Prosody or sqlite3; others leave that to it.
      const fold = how === "as-last" && (this.processType === "server" || !(await database.engine.othersOpen()));
      await database.close({ fold });
    })();
    const settled = done.catch(() => {});
    this.closing.set(key, settled);
    try {
      await done;
    } finally {
      if (this.closing.get(key) === settled) this.closing.delete(key);
      this.endWorkerIfIdle();
    }
  }

  private endWorkerIfIdle(): void {
    if (this.entries.size > 0 || this.closing.size > 0 || !this.snapshots) return;
    void this.snapshots.end();
    this.snapshots = undefined;
  }
}

/** The runtime's SqlDatabases, kept in its shared table SQL_DATABASES_TABLE (`table`). */
export function sqlDatabasesIn(table: { databases?: SqlDatabases }, processType: "server" | "prosodyctl"): SqlDatabases {
  return (table.databases ??= new SqlDatabases(processType));
}

/** One database per key: a file, or a server address, user and database name. */
export const sqlTargetKey = (t: SqlTarget): string =>
  t.driver === "SQLite3" ? `${t.driver}:${t.file}` : `${t.driver}:${JSON.stringify([t.host, t.port, t.username, t.database])}`;
const keyOf = sqlTargetKey;
