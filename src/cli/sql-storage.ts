/**
 * prosodyctl commands open the SQLite databases their config uses before running (see
 * core/sql-startup.ts): a database that must be refused stops the command with its one-line
 * message (exit 1) instead of the command seeing an empty fallback store, and the command's
 * stop then closes the database (folding the journal in when no other process has it open).
 */
import type { Config } from "../core/config/index.js";
import type { Runtime } from "../core/runtime.js";
import { loadSqlStorage, openSqlDatabasesEarly } from "../core/sql-startup.js";
import { StorageError } from "../storage/types.js";

/** Opens the config's SQLite storage; returns the refusal text, or undefined when all is well. */
export async function openSqlStorage(runtime: Runtime, config: Config): Promise<string | undefined> {
  const hosts = config.hosts().filter((h) => config.isEnabled(h));
  try {
    await openSqlDatabasesEarly(runtime, hosts);
  } catch (err) {
    if (err instanceof StorageError) return err.message;
    throw err;
  }
  try {
    await loadSqlStorage(runtime, hosts);
  } catch (err) {
    return `Failed to load the sql storage driver: ${err instanceof Error ? err.message : String(err)}`;
  }
  return undefined;
}
