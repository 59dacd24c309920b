/**
 * SQLite storage at process start (server and prosodyctl commands).
 *
 * Why not lazily, on a store's first use like other drivers: the SQLite file is only complete
 * (journal folded in) after one of our processes has opened and cleanly closed it. A server that
 * never touched the database between a crash and its clean stop left the journal unfolded; and a
 * database that must be refused (a damaged journal, a file changed by another program, a missing
 * file: see storage/sqlite/integrity.ts) has to stop the process with one clear message, not turn
 * into an empty fallback store at the first request.
 *
 * So, before any module loads: open every SQLite database the hosts use, in the runtime's
 * SqlDatabases (a refusal throws its message; the server also folds leftover journal records in
 * when it is alone); then, once modules are loaded, load `storage_sql` on each such host: each
 * takes a lease on that same database, and the last to let go closes (and, when last of our
 * processes, folds) it.
 */
import { SQL_DATABASES_TABLE, sqlDatabasesIn, sqlTarget, type SqlDatabase, type SqlDatabases, type SqlTarget, sqlTargetKey, sqlTargetLabel } from "../storage/drivers/sql-database.js";
import { isRefusal } from "../storage/sqlite/integrity.js";
import { createLogger } from "./logger.js";
import { ModuleLoadError } from "./modulemanager.js";
import type { Runtime } from "./runtime.js";

const SQL_NAMES = new Set(["sql", "sql2"]);
const log = createLogger("storage");

/** Whether some store of `host` may resolve to the sql driver (storagemanager's rules). */
export function hostUsesSql(runtime: Runtime, host: string): boolean {
  const storage = runtime.config.get(host, "storage");
  if (typeof storage === "string") return SQL_NAMES.has(storage);
  if (storage && typeof storage === "object" && !Array.isArray(storage) && Object.values(storage).some((d) => typeof d === "string" && SQL_NAMES.has(d))) {
    return true;
  }
  const def = runtime.config.get(host, "default_storage");
  return typeof def === "string" && SQL_NAMES.has(def);
}

/** The runtime's SQL databases (kept in its shared tables, like storage_sql finds them). */
function sqlDatabasesOfRuntime(runtime: Runtime): SqlDatabases {
  return sqlDatabasesIn(runtime.shared(SQL_DATABASES_TABLE), runtime.processType);
}

/** The SQL databases used by `hosts`, each with the hosts using it. */
function sqlTargetsOf(runtime: Runtime, hosts: readonly string[]): Map<string, { target: SqlTarget; hosts: string[] }> {
  const targets = new Map<string, { target: SqlTarget; hosts: string[] }>();
  for (const host of hosts) {
    if (!hostUsesSql(runtime, host)) continue;
    const target = sqlTarget(runtime.config.get(host, "sql") ?? { driver: "SQLite3" }, runtime.paths.data);
    if ("error" in target) continue; // reported when the driver loads
    const key = sqlTargetKey(target);
    const t = targets.get(key) ?? { target, hosts: [] };
    t.hosts.push(host);
    targets.set(key, t);
  }
  return targets;
}

/** The SQLite files used by `hosts`, each with the hosts using it. */
export function sqlDatabasesOf(runtime: Runtime, hosts: readonly string[]): Map<string, string[]> {
  const files = new Map<string, string[]>();
  for (const { target, hosts: users } of sqlTargetsOf(runtime, hosts).values()) {
    if (target.driver === "SQLite3") files.set(target.file, users);
  }
  return files;
}

/**
 * Opens every SQL database of `hosts` now; throws (the refusal's own message) if one cannot be
 * used. In the server, leftover journal records (a crash, a prosodyctl killed mid-command) are then
 * folded into the file when none of our other processes has it open, before any request is served.
 */
export async function openSqlDatabasesEarly(runtime: Runtime, hosts: readonly string[]): Promise<void> {
  const databases = sqlDatabasesOfRuntime(runtime);
  const opened: SqlTarget[] = [];
  try {
    for (const { target, hosts: users } of sqlTargetsOf(runtime, hosts).values()) {
      // The same lock timeout as storage_sql would use: the runtime keeps this database for it.
      const seconds = runtime.config.get(users[0]!, "storage_lock_timeout");
      const lockTimeoutMs = typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
      let database: SqlDatabase;
      try {
        const manageTables = runtime.config.get(users[0]!, "sql_manage_tables") !== false;
        database = await databases.open(target, { ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }), manageTables, log: (level, message) => log(level, "%s", message) });
      } catch (err) {
        // Damage or a foreign file stops the process; a passing cause (another of our processes
        // holding the lock, too many open files) does not: the store opens on first use instead
        // (HTTP 503 until then), and whoever closes last folds the journal.
        if (isRefusal(err) || isSqlConfigError(err)) throw err;
        // prosodyctl: a command is run once, by someone waiting for its answer; a database server
        // that cannot be reached now is that answer (one line, exit 1), not a warning and a
        // failure later in the command. The server starts anyway (Prosody's too): PostgreSQL may
        // start after it or be restarting; its routes answer 503 until the database is back.
        if (runtime.processType === "prosodyctl" && target.driver === "PostgreSQL") throw err;
        log("warn", "Could not open %s at start (%s); it will be opened on first use", sqlTargetLabel(target), err instanceof Error ? err.message : err);
        continue;
      }
      opened.push(target);
      if (runtime.processType === "server" && database.engine.foldLeftovers) {
        // A failure loses nothing (the records stay in the journal; the clean stop folds them).
        await database.engine
          .foldLeftovers()
          .catch((err: unknown) => log("warn", "Could not fold the journal of %s at start: %s", database.engine.label, err));
      }
    }
  } catch (err) {
    for (const target of opened) await databases.discard(target).catch(() => undefined);
    throw err;
  }
}

/** Loads `storage_sql` on every host of `hosts` that uses it (see the header comment). */
export async function loadSqlStorage(runtime: Runtime, hosts: readonly string[]): Promise<void> {
  for (const { hosts: list } of sqlTargetsOf(runtime, hosts).values()) {
    for (const host of list) {
      if (runtime.modules.isLoaded(host, "storage_sql")) continue;
      try {
        await runtime.modules.load(host, "storage_sql");
      } catch (err) {
        if (err instanceof ModuleLoadError && err.code === "module-already-loaded") continue;
        const cause = err instanceof ModuleLoadError && err.cause !== undefined ? err.cause : err;
        if (isRefusal(cause) || !isPassingStorageFailure(cause)) throw err;
        // As in openSqlDatabasesEarly: the storage manager loads it again on first use.
        log("warn", "Could not load storage_sql on %s at start (%s); it will be loaded on first use", host, err instanceof Error ? err.message : err);
      }
    }
  }
}

/**
 * The `sql` option names a PostgreSQL database we may not use (wrong password, role or database
 * name), or tables that are missing with sql_manage_tables = false: a mistake in the config, not
 * an outage, so it stops the start like a refused SQLite file.
 */
function isSqlConfigError(err: unknown): boolean {
  return err instanceof Error && err.name === "SqlConfigError";
}

/** A storage failure that may pass (a lock held elsewhere, too many open files), by its name. */
function isPassingStorageFailure(err: unknown): boolean {
  const name = err instanceof Error ? err.name : undefined;
  return name === "StorageError" || name === "StorageUnavailableError";
}
