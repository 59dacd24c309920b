/**
 * withGrowthRoom(): a loaded image gets zeroed room to grow into, which SQLite ignores (valid
 * header size), and which never reaches the files: the compacted DB holds exactly its pages.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { withGrowthRoom } from "../../src/storage/sqlite/db-image.js";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { loadSqlJs } from "../../src/storage/sqlite/sqljs.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-growth-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
const { SQL } = await loadSqlJs();

function image(rows: number): Uint8Array {
  const db = new SQL.Database();
  db.exec(`CREATE TABLE t (k TEXT, v TEXT); CREATE INDEX ti ON t (k);`);
  db.exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows}) INSERT INTO t SELECT printf('k%08d', i), hex(randomblob(50)) FROM c`);
  const img = db.export();
  db.close();
  return img;
}

test("a valid image gets room (its own size, at least 32 MiB); an image without a valid header size does not", () => {
  const img = image(2000);
  const roomy = withGrowthRoom(img);
  assert.ok(roomy.length >= img.length + 32 * 1024 * 1024);
  assert.equal(Buffer.from(roomy.subarray(0, img.length)), Buffer.from(img));
  assert.ok(roomy.subarray(img.length).every((b) => b === 0));
  // "version-valid-for" (offset 92) no longer matching the change counter: SQLite would size the
  // database by the file, so zeros would become pages. Such an image is loaded as it is.
  const stale = Uint8Array.from(img);
  Buffer.from(stale.buffer).writeUInt32BE(Buffer.from(stale.buffer).readUInt32BE(24) + 1, 92);
  assert.is(withGrowthRoom(stale), stale);
  const short = img.subarray(0, 50);
  assert.is(withGrowthRoom(short), short);
});

test("a store loaded with room grows into it, stays intact, and its compacted file holds only its pages", async () => {
  const file = path.join(root, "a.sqlite");
  fs.writeFileSync(file, image(5000));
  const db = await DurableSqlite.open(file);
  for (let i = 0; i < 20; i++) {
    await db.execute([[`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500) INSERT INTO t SELECT hex(randomblob(8)), hex(randomblob(50)) FROM c`]]);
  }
  assert.equal(db.all(`PRAGMA integrity_check`), [{ integrity_check: "ok" }]);
  assert.equal(db.get(`SELECT count(*) AS n FROM t`), { n: 15000 });
  await db.close({ compact: true });
  const bytes = fs.readFileSync(file);
  const pageSize = bytes.readUInt16BE(16);
  assert.is(bytes.length, bytes.readUInt32BE(28) * pageSize, "file size = header page count x page size");
  const again = await DurableSqlite.open(file);
  assert.equal(again.get(`SELECT count(*) AS n FROM t`), { n: 15000 });
  assert.equal(again.all(`PRAGMA integrity_check`), [{ integrity_check: "ok" }]);
  await again.close();
});

test.run();
