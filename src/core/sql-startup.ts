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
 * So, before any module loads: open every SQLite database the hosts use (a refusal throws its
 * message; the server also folds leftover journal records in when it is alone); then, once modules
 * are loaded, load `storage_sql` on each such host, so that every process closes (and, when last,
 * folds) the database when it stops.
 */
import { openSqlDatabase, sqlDatabaseFile } from "../storage/drivers/sql.js";
import type { DurableSqlite } from "../storage/sqlite/durable-db.js";
import { isRefusal } from "../storage/sqlite/integrity.js";
import { HEADER_SIZE as JOURNAL_HEADER_SIZE } from "../storage/sqlite/journal.js";
import { Presence } from "../storage/sqlite/presence.js";
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

/** The SQLite files used by `hosts`, each with the hosts using it. */
export function sqlDatabasesOf(runtime: Runtime, hosts: readonly string[]): Map<string, string[]> {
  const files = new Map<string, string[]>();
  for (const host of hosts) {
    if (!hostUsesSql(runtime, host)) continue;
    const where = sqlDatabaseFile(runtime.config.get(host, "sql") ?? { driver: "SQLite3" }, runtime.paths.data);
    if ("error" in where) continue; // reported when the driver loads
    files.set(where.file, [...(files.get(where.file) ?? []), host]);
  }
  return files;
}

/**
 * Opens every SQLite database of `hosts` now; throws (the refusal's own message) if one cannot be
 * used. In the server, leftover journal records (a crash, a prosodyctl killed mid-command) are then
 * folded into the file when none of our other processes has it open, before any request is served.
 */
export async function openSqlDatabasesEarly(runtime: Runtime, hosts: readonly string[]): Promise<void> {
  const opened: DurableSqlite[] = [];
  try {
    for (const [file, users] of sqlDatabasesOf(runtime, hosts)) {
      // The same lock timeout as mod_storage_sql would use: the process keeps this instance.
      const seconds = runtime.config.get(users[0]!, "storage_lock_timeout");
      const lockTimeoutMs = typeof seconds === "number" && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
      let db: DurableSqlite;
      try {
        db = await openSqlDatabase(file, { ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }), log: (level, message) => log(level, "%s", message) });
      } catch (err) {
        // Damage or a foreign file stops the process; a passing cause (another of our processes
        // holding the lock, too many open files) does not: the store opens on first use instead
        // (HTTP 503 until then), and whoever closes last folds the journal.
        if (isRefusal(err)) throw err;
        log("warn", "Could not open %s at start (%s); it will be opened on first use", file, err instanceof Error ? err.message : err);
        continue;
      }
      opened.push(db);
      if (runtime.processType === "server") await foldIfAlone(db);
    }
  } catch (err) {
    for (const db of opened) await db.close().catch(() => undefined);
    throw err;
  }
}

async function foldIfAlone(db: DurableSqlite): Promise<void> {
  if (db.journalSize <= JOURNAL_HEADER_SIZE) return;
  const presence = await Presence.announce(db.file);
  try {
    if (!presence || (await presence.othersOpen())) return;
    // A failure loses nothing (the records stay in the journal; the clean stop folds them).
    await db.compact().catch((err: unknown) => log("warn", "Could not fold the journal of %s at start: %s", db.file, err));
  } finally {
    presence?.close();
  }
}

/** Loads `storage_sql` on every host of `hosts` that uses it (see the header comment). */
export async function loadSqlStorage(runtime: Runtime, hosts: readonly string[]): Promise<void> {
  for (const list of sqlDatabasesOf(runtime, hosts).values()) {
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

/** A storage failure that may pass (a lock held elsewhere, too many open files), by its name. */
function isPassingStorageFailure(err: unknown): boolean {
  const name = err instanceof Error ? err.name : undefined;
  return name === "StorageError" || name === "StorageUnavailableError";
}
