/**
 * storage = "sql": Prosody's table layout on SQLite through sql.js, made durable and shareable
 * between our processes by src/storage/sqlite (see the notes there on what is safe).
 * Only `driver = "SQLite3"` is supported; other drivers are refused with a clear error.
 */
import type { Module } from "../core/types.js";
import { createSqlProvider, openSqlDatabase, sqlDatabaseFile } from "../storage/drivers/sql.js";
import { Presence } from "../storage/sqlite/presence.js";
import { lockTimeoutMs } from "./storage-options.js";

interface Shared {
  refs?: Map<string, number>;
  presence?: Map<string, Promise<Presence | undefined>>;
}

export default async function (module: Module): Promise<void> {
  const where = sqlDatabaseFile(module.getOption("sql", { driver: "SQLite3" }), module.server.paths.data);
  if ("error" in where) throw new Error(where.error);
  const file = where.file;
  const db = await openSqlDatabase(file, { lockTimeoutMs: lockTimeoutMs(module), log: (level, message) => module.log(level, "%s", message) });

  // One database per file per process, shared by every host: close it with the last user.
  const shared = module.shared<Shared>("/*/sql/connections");
  const refs = (shared.refs ??= new Map());
  refs.set(file, (refs.get(file) ?? 0) + 1);
  const presences = (shared.presence ??= new Map());
  if (!presences.has(file)) presences.set(file, Presence.announce(file));
  module.unload = async () => {
    const n = (refs.get(file) ?? 1) - 1;
    if (n > 0) refs.set(file, n);
    else {
      refs.delete(file);
      // The last of our processes to close the database folds the journal into the SQLite file,
      // so that file alone is complete for a real Prosody or sqlite3. Others leave it to that one.
      const presence = await presences.get(file);
      presences.delete(file);
      const last = presence ? !(await presence.othersOpen()) : false;
      await db.close({ compact: last || module.server.processType === "server" });
      presence?.close();
    }
  };

  module.provides("storage", createSqlProvider({ host: module.host, db }));
}
