/**
 * storage = "sql": Prosody's table layout through a database engine (SQLite on sql.js, made durable
 * and shareable between our processes by src/storage/sqlite; see DESIGN.md there on what is safe).
 * The database is the runtime's (storage/drivers/sql-database.ts): each host holds a lease on it,
 * and the last lease released closes it, folding the journal when it should.
 * `driver = "SQLite3"` and `driver = "PostgreSQL"` (sql-pg.ts) are supported; others are refused with a clear error.
 */
import type { Module } from "../core/types.js";
import { createSqlProvider } from "../storage/drivers/sql.js";
import { SQL_DATABASES_TABLE, sqlDatabasesIn, sqlTarget } from "../storage/drivers/sql-database.js";
import { lockTimeoutMs } from "./storage-options.js";

export default async function (module: Module): Promise<void> {
  const target = sqlTarget(module.getOption("sql", { driver: "SQLite3" }), module.server.paths.data);
  if ("error" in target) throw new Error(target.error);
  const databases = sqlDatabasesIn(module.shared(SQL_DATABASES_TABLE), module.server.processType);
  const lease = await databases.lease(target, {
    lockTimeoutMs: lockTimeoutMs(module),
    // Prosody's sql_manage_tables (default true): false leaves table creation to the admin.
    manageTables: module.getOption("sql_manage_tables", true) !== false,
    log: (level, message) => module.log(level, "%s", message),
  });
  // Commit times and the journal's size go to the statistics bus (nobody listening: no-op).
  const db = lease.database;
  const stats = module.server.stats;
  db.onCommit ??= (seconds, ok) => stats.observe("storage_commit", seconds, { driver: target.driver, ok: ok ? "true" : "false" });
  const engine = db.engine;
  const dropGauge = engine.journalBytes ? stats.gauge("storage_journal_bytes", { database: engine.label }, () => engine.journalBytes!()) : undefined;
  module.onUnload(() => {
    dropGauge?.();
    return lease.release();
  });
  module.provides("storage", createSqlProvider({ host: module.host, db: lease.database }));
}
