/**
 * Issue 15 item 4: a short-lived process (prosodyctl) opens the DB file's image in place (a file in
 * sql.js's MEMFS) instead of copying every page into an in-memory database. What must hold: the
 * runtime's databases of a prosodyctl process make no such copy (the server's still do); such a
 * copy takes in the other processes' records, writes through the journal, and its compacting close
 * leaves a complete SQLite file; a reload after someone else's compaction works; and the whole
 * storage conformance suite passes on it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import { SqlDatabases } from "../../src/storage/drivers/sql-database.js";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { MemoryDb } from "../../src/storage/sqlite/mem-db.js";
import { loadSqlJs } from "../../src/storage/sqlite/sqljs.js";
import { storageConformance } from "./conformance.js";
import { filledStore } from "../helpers/sqlite-fill.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-inplace-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDb = () => path.join(root, `d${n++}`, "prosody.sqlite");

/** A store with `rows` rows, folded into its file (so that opening it loads a real image). */
const filled = (rows: number, valueBytes = 100) => filledStore(newDb(), rows, valueBytes);

test("a prosodyctl process opens its SQL databases in place; the server copies them", async () => {
  const file = await filled(2000);
  for (const [processType, copies] of [["prosodyctl", 0], ["server", 1]] as const) {
    const before = MemoryDb.copiesIn;
    const dbs = new SqlDatabases(processType);
    const lease = await dbs.lease({ driver: "SQLite3", file });
    assert.is((await lease.database.engine.read((v) => v.get(`SELECT count(*) AS n FROM t`)))?.n, 2000, processType);
    await lease.release();
    assert.is(MemoryDb.copiesIn - before, copies, `${processType}: copies of the image into the heap`);
  }
});

/** WebAssembly memory growth of a fresh process opening `file` (and reading it) with `workingCopy`. */
function growthInChild(file: string, workingCopy: "memory" | "in-place"): number {
  const src = pathToFileURL(path.resolve("src/storage/sqlite")).href;
  const script = `
    const { loadSqlJs } = await import("${src}/sqljs.ts");
    const { DurableSqlite } = await import("${src}/durable-db.ts");
    const { memory } = await loadSqlJs();
    const before = memory.buffer.byteLength;
    const db = await DurableSqlite.open(${JSON.stringify(file)}, { workingCopy: "${workingCopy}" });
    if (db.get("SELECT count(*) AS n FROM t").n !== 20000) throw new Error("rows missing");
    console.log(memory.buffer.byteLength - before);
    await db.close();`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
  assert.is(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test("opening in place does not grow the WebAssembly memory by the database's size", async () => {
  // Larger than the memory sql.js starts with (16 MiB), so that a copy has to grow it.
  const file = await filled(20_000, 1500);
  const size = fs.statSync(file).size; // ~32 MB
  const copied = growthInChild(file, "memory");
  const inPlace = growthInChild(file, "in-place");
  assert.ok(copied >= size / 2, `a copy grows the memory by about the file's size (${copied} for ${size} bytes)`);
  assert.ok(inPlace < size / 8, `in place grew it by ${inPlace} bytes for a ${size}-byte file`);
});

test("in place: other processes' records are taken in, own writes journaled, the compacting close leaves a complete file", async () => {
  const file = await filled(100);
  const server = await DurableSqlite.open(file); // another process, as far as the files go
  const cli = await DurableSqlite.open(file, { workingCopy: "in-place" });
  await server.execute([[`INSERT INTO t VALUES ('from-server', '1')`]]);
  assert.is(cli.get(`SELECT v FROM t WHERE k = 'from-server'`)?.v, "1", "the server's record, replayed onto the in-place copy");
  await cli.execute([[`INSERT INTO t VALUES ('from-cli', '2')`]]);
  assert.is(server.get(`SELECT v FROM t WHERE k = 'from-cli'`)?.v, "2", "the in-place copy's write, through the journal");
  // The server compacts; the in-place copy reloads the new file on its next read.
  await server.compact();
  await server.execute([[`INSERT INTO t VALUES ('after', '3')`]]);
  assert.is(cli.get(`SELECT count(*) AS n FROM t`)?.n, 103);
  await server.close();
  await cli.execute([[`DELETE FROM t WHERE k = 'k0'`]]);
  await cli.close({ compact: true });
  assert.not.ok(fs.existsSync(file + ".sqljs-journal"), "the journal is folded and removed");
  const { SQL } = await loadSqlJs();
  const check = new SQL.Database(fs.readFileSync(file));
  try {
    assert.equal(check.exec(`PRAGMA integrity_check`)[0]!.values, [["ok"]]);
    assert.equal(check.exec(`SELECT count(*) FROM t`)[0]!.values, [[102]]);
  } finally {
    check.close();
  }
});

test.run();

storageConformance("sql in place", async () => {
  const file = newDb();
  const db = await openSqlDatabase(file, { workingCopy: "in-place" });
  return {
    provider: createSqlProvider({ host: "example.com", db }),
    cleanup: async () => {
      await db.close();
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    },
  };
}).run();
