/**
 * storage = "sql": Prosody's table layout on SQLite through sql.js, made durable and shareable
 * between our processes by src/storage/sqlite (see the notes there on what is safe).
 * Only `driver = "SQLite3"` is supported; other drivers are refused with a clear error.
 */
import { resolve } from "node:path";
import type { Module } from "../core/types.js";
import { createSqlProvider, openSqlDatabase } from "../storage/drivers/sql.js";
import { Presence } from "../storage/sqlite/presence.js";

interface Shared {
  refs?: Map<string, number>;
  presence?: Map<string, Promise<Presence | undefined>>;
}

export default async function (module: Module): Promise<void> {
  const params = module.getOption("sql", { driver: "SQLite3" });
  const p = params && typeof params === "object" && !Array.isArray(params) ? params : {};
  const driver = typeof p.driver === "string" ? p.driver : "SQLite3";
  if (driver !== "SQLite3") {
    throw new Error(`sql driver ${JSON.stringify(driver)} is not supported by this host (only SQLite3)`);
  }
  const database = typeof p.database === "string" && p.database !== "" ? p.database : "prosody.sqlite";
  const file = resolve(module.server.paths.data, database);
  const db = await openSqlDatabase(file);

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
