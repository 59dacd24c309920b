/**
 * MemoryDb: the working copy as an SQLite in-memory database. An image goes in and comes out
 * intact (header fields included), a file that is not a database is refused at load, the pages
 * live in the WebAssembly memory (not in a JavaScript-side file that is copied whole to grow), and a
 * store growing far past its loaded size stays intact through DurableSqlite.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { MemoryDb } from "../../src/storage/sqlite/mem-db.js";
import { RawStatements } from "../../src/storage/sqlite/raw-sqlite.js";
import { loadSqlJs } from "../../src/storage/sqlite/sqljs.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-memdb-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
const { SQL, memory } = await loadSqlJs();

function image(rows: number, pragmas = ""): Uint8Array {
  const db = new SQL.Database();
  db.exec(`${pragmas} CREATE TABLE t (k TEXT, v TEXT); CREATE INDEX ti ON t (k);`);
  db.exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows}) INSERT INTO t SELECT printf('k%08d', i), hex(randomblob(50)) FROM c`);
  const img = db.export();
  db.close();
  return img;
}

test("an image goes in and comes out with its rows and header fields", () => {
  const img = image(3000, "PRAGMA user_version = 7; PRAGMA application_id = 4242;");
  const db = MemoryDb.load(SQL, memory, img);
  const raw = new RawStatements(SQL, memory, db);
  try {
    assert.equal(raw.rows(`SELECT count(*) AS n, min(k) AS lo, max(k) AS hi FROM t`, []), [{ n: 3000, lo: "k00000001", hi: "k00003000" }]);
    raw.run(`INSERT INTO t VALUES ('new', 'row')`);
    const out = Buffer.from(db.export());
    assert.is(out.readUInt32BE(60), 7, "user_version");
    assert.is(out.readUInt32BE(68), 4242, "application_id");
    assert.is(out.length, out.readUInt32BE(28) * out.readUInt16BE(16), "the file holds exactly its pages");
    const back = new SQL.Database(out);
    assert.equal(back.exec(`SELECT count(*) FROM t`)[0].values, [[3001]]);
    assert.equal(back.exec(`PRAGMA integrity_check`)[0].values, [["ok"]]);
    back.close();
  } finally {
    raw.free();
    db.close();
  }
});

test("an empty image gives a new database; a file that is not SQLite is refused at load", () => {
  const db = MemoryDb.load(SQL, memory, new Uint8Array(0));
  db.exec(`CREATE TABLE x (a)`);
  db.close();
  assert.throws(() => MemoryDb.load(SQL, memory, Buffer.alloc(8192, "garbage")), /not a database/);
});

test("the database is SQLite's in-memory one, not a file in sql.js's MEMFS", () => {
  const db = MemoryDb.load(SQL, memory, image(100));
  const raw = new RawStatements(SQL, memory, db);
  try {
    // A sql.js Database names its MEMFS file here ("/dbfile_…"); an in-memory database has none.
    assert.equal(raw.rows(`PRAGMA database_list`, []).map((r) => [r.name, r.file]), [["main", ""]]);
  } finally {
    raw.free();
    db.close();
  }
});

test("DurableSqlite's copy is an in-memory database", async () => {
  const file = path.join(root, "b.sqlite");
  fs.writeFileSync(file, image(100));
  const db = await DurableSqlite.open(file);
  try {
    assert.equal(db.all(`PRAGMA database_list`).map((r) => [r.name, r.file]), [["main", ""]]);
  } finally {
    await db.close();
  }
});

test("a store grows far past its loaded size, stays intact, and its compacted file holds only its pages", async () => {
  const file = path.join(root, "a.sqlite");
  fs.writeFileSync(file, image(5000));
  const db = await DurableSqlite.open(file);
  for (let i = 0; i < 20; i++) {
    await db.execute([[`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) INSERT INTO t SELECT hex(randomblob(8)), hex(randomblob(50)) FROM c`]]);
  }
  assert.equal(db.all(`PRAGMA integrity_check`), [{ integrity_check: "ok" }]);
  assert.equal(db.get(`SELECT count(*) AS n FROM t`), { n: 45000 });
  await db.close({ compact: true });
  const bytes = fs.readFileSync(file);
  assert.is(bytes.length, bytes.readUInt32BE(28) * bytes.readUInt16BE(16), "file size = header page count x page size");
  const again = await DurableSqlite.open(file);
  assert.equal(again.get(`SELECT count(*) AS n FROM t`), { n: 45000 });
  assert.equal(again.all(`PRAGMA integrity_check`), [{ integrity_check: "ok" }]);
  await again.close();
});

test("an export makes one copy of the database in JavaScript memory, not two", () => {
  const db = MemoryDb.load(SQL, memory, image(60_000)); // ~10 MB
  try {
    const before = process.memoryUsage().arrayBuffers;
    const out = db.export();
    const grew = process.memoryUsage().arrayBuffers - before;
    assert.ok(grew < 1.5 * out.length, `array buffers grew by ${grew} bytes for a ${out.length}-byte image`);
    assert.is(Buffer.from(out.buffer, out.byteOffset, out.length).readUInt32BE(28) * 4096, out.length);
    const back = new SQL.Database(out);
    assert.equal(back.exec(`SELECT count(*) FROM t`)[0]!.values, [[60_000]]);
    back.close();
  } finally {
    db.close();
  }
});

test.run();
