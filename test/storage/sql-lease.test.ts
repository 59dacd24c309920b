/**
 * Issue #12 item 2: the SQL database has one owner per runtime (a lease), not a process-wide
 * registry. Two runtimes in one process (tests, an embedding application) each hold their own
 * lease: stopping one never closes the other's database, and the last closer folds the journal.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Runtime } from "../../src/core/runtime.js";
import { createRuntime } from "../../src/create-runtime.js";
import { loadSqlStorage, openSqlDatabasesEarly } from "../../src/core/sql-startup.js";
import { createSqlProvider } from "../../src/storage/drivers/sql.js";
import { SqlDatabases, sqlTarget } from "../../src/storage/drivers/sql-database.js";
import type { MapStore } from "../../src/storage/types.js";
import { makeConfig } from "../helpers/config.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-lease-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

async function runtimeOn(data: string, processType: "server" | "prosodyctl" = "server"): Promise<Runtime> {
  const config = makeConfig({ data_path: data, storage: "sql", modules_enabled: [] }, { "example.com": {} });
  const rt = createRuntime({ config, processType });
  await openSqlDatabasesEarly(rt, ["example.com"]);
  await rt.start();
  await loadSqlStorage(rt, ["example.com"]);
  return rt;
}

const mapOf = async (rt: Runtime) => (await rt.storage.open("example.com", "m", "map")) as MapStore;

test("two runtimes on one database in one process: stopping one leaves the other's store working", async () => {
  const data = path.join(root, "two");
  const a = await runtimeOn(data);
  const b = await runtimeOn(data);
  const ma = await mapOf(a);
  const mb = await mapOf(b);
  await ma.set(null, "k", "from a");
  assert.is(await mb.get(null, "k"), "from a", "b sees a's write");
  await a.stop();
  await mb.set(null, "k", "from b after a stopped");
  assert.is(await mb.get(null, "k"), "from b after a stopped");
  assert.ok(fs.existsSync(path.join(data, "prosody.sqlite.sqljs-journal")), "b still has the database open: a did not remove the journal under it");
  await b.stop();
  assert.not.ok(fs.existsSync(path.join(data, "prosody.sqlite.sqljs-journal")), "the last closer folded the journal");
  const c = await runtimeOn(data, "prosodyctl");
  assert.is(await (await mapOf(c)).get(null, "k"), "from b after a stopped");
  await c.stop();
});

test("a runtime's hosts share one database; it closes (and folds) with the last of them", async () => {
  const data = path.join(root, "hosts");
  const config = makeConfig({ data_path: data, storage: "sql", modules_enabled: [] }, { "a.example": {}, "b.example": {} });
  const rt = createRuntime({ config, processType: "prosodyctl" });
  await openSqlDatabasesEarly(rt, ["a.example", "b.example"]);
  await loadSqlStorage(rt, ["a.example", "b.example"]);
  const a = (await rt.storage.open("a.example", "m", "map")) as MapStore;
  const b = (await rt.storage.open("b.example", "m", "map")) as MapStore;
  await a.set(null, "k", "a");
  await b.set(null, "k", "b");
  await rt.modules.unload("a.example", "storage_sql");
  assert.is(await b.get(null, "k"), "b", "b's store still works once a's module is unloaded");
  assert.ok(fs.existsSync(path.join(data, "prosody.sqlite.sqljs-journal")));
  await rt.stop();
  assert.not.ok(fs.existsSync(path.join(data, "prosody.sqlite.sqljs-journal")), "folded by the last closer");
});

test("a lease taken while the last one is being released waits for that close, then opens afresh", async () => {
  const data = path.join(root, "reopen");
  const target = sqlTarget({}, data);
  if ("error" in target) throw new Error(target.error);
  const databases = new SqlDatabases("prosodyctl");
  const first = await databases.lease(target);
  await (createSqlProvider({ host: "example.com", db: first.database }).open("m", "map") as MapStore).set(null, "k", "one");
  const closing = first.release(); // the last lease: closes and folds (no other process has it open)
  const second = await databases.lease(target);
  await closing;
  assert.is.not(second.database, first.database, "a new database, not the one being closed");
  const m = createSqlProvider({ host: "example.com", db: second.database }).open("m", "map") as MapStore;
  assert.is(await m.get(null, "k"), "one");
  await m.set(null, "k", "two");
  await second.release();
  await first.release(); // releasing twice changes nothing
  assert.not.ok(fs.existsSync(path.join(data, "prosody.sqlite.sqljs-journal")), "folded by the last release");
});

test("an early-opened database stays open without a lease; discard closes it without folding", async () => {
  const data = path.join(root, "early");
  const target = sqlTarget({}, data);
  if ("error" in target) throw new Error(target.error);
  const databases = new SqlDatabases("server");
  const early = await databases.open(target);
  const lease = await databases.lease(target);
  assert.is(lease.database, early, "the lease is on the database opened early");
  await (createSqlProvider({ host: "example.com", db: early }).open("m", "map") as MapStore).set(null, "k", "v");
  await lease.release();
  assert.not.ok(fs.existsSync(path.join(data, "prosody.sqlite.sqljs-journal")), "the server folds at its last release");
  const again = await databases.open(target);
  const m = createSqlProvider({ host: "example.com", db: again }).open("m", "map") as MapStore;
  await m.set(null, "k", "w");
  await databases.discard(target);
  assert.ok(fs.existsSync(path.join(data, "prosody.sqlite.sqljs-journal")), "discarded without folding");
  const err = await m.set(null, "k", "x").then(() => undefined, (e: Error) => e);
  assert.match(String(err), /database is closed/);
});

test.run();
