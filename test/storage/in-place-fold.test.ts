/**
 * Issue 15 item 4: a prosodyctl process (working copy in place) folds the journal on exit by
 * writing its working copy's own file (the memory sql.js's MEMFS keeps it in), not an exported copy
 * of the database (MemoryDb.liveImage). What must hold: that path is taken when the file stayed in
 * the room it was given, and the file then written is the complete, valid database; when the file
 * outgrew that room (MEMFS moved it), or a rolled-back transaction spilled into it, a copy is
 * exported instead and the file is just as complete; a compaction that is not a close leaves a
 * working copy that goes on writing correctly.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { isOwnImage } from "../../src/storage/sqlite/db-image.js";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { MemoryDb } from "../../src/storage/sqlite/mem-db.js";
import { loadSqlJs } from "../../src/storage/sqlite/sqljs.js";
import { filledStore } from "../helpers/sqlite-fill.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-inplace-fold-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A store with `rows` rows of `valueBytes`, folded into its file. */
const filled = (rows: number, valueBytes = 100) => filledStore(path.join(root, `d${n++}`, "prosody.sqlite"), rows, valueBytes);

/** The file as SQLite sees it: integrity, row count, sum of value lengths; and that it carries our own checksum. */
async function inspect(file: string): Promise<{ ok: string; rows: number; bytes: number; own: boolean }> {
  const img = fs.readFileSync(file);
  const { SQL } = await loadSqlJs();
  const db = new SQL.Database(img);
  try {
    const ok = String(db.exec(`PRAGMA integrity_check`)[0]!.values[0]![0]);
    const [rows, bytes] = db.exec(`SELECT count(*), total(length(v)) FROM t`)[0]!.values[0]! as number[];
    return { ok, rows: rows!, bytes: bytes!, own: isOwnImage(img) };
  } finally {
    db.close();
  }
}

const insert = (from: number, count: number, valueBytes: number) =>
  Array.from({ length: count }, (_, i) => [`INSERT INTO t VALUES (?, ?)`, [`new${from + i}`, "y".repeat(valueBytes)]] as const);

test("a few writes: the close writes the in-place file itself, complete and stamped", async () => {
  const file = await filled(3000);
  const db = await DurableSqlite.open(file, { workingCopy: "in-place" });
  for (let i = 0; i < 5; i++) await db.execute(insert(i * 10, 10, 300)); // grows the file by a few pages
  await db.execute([[`DELETE FROM t WHERE k = 'k7'`]]);
  const before = MemoryDb.liveImages;
  await db.close({ compact: true });
  assert.is(MemoryDb.liveImages - before, 1, "the fold used the working copy's own file");
  assert.not.ok(fs.existsSync(file + ".sqljs-journal"));
  assert.equal(await inspect(file), { ok: "ok", rows: 3049, bytes: 3000 * 100 - 100 + 50 * 300, own: true });
});

test("a file grown past its room: MEMFS moved it, so the close exports a copy (and the file is complete)", async () => {
  const file = await filled(200); // small: its room is the 1 MiB minimum
  const db = await DurableSqlite.open(file, { workingCopy: "in-place" });
  for (let i = 0; i < 8; i++) await db.execute(insert(i * 100, 100, 2000)); // ~1.6 MB more than the file
  await db.execute([[`UPDATE t SET v = 'z' WHERE k = 'k0'`]]); // a last write of early pages
  const before = MemoryDb.liveImages;
  await db.close({ compact: true });
  assert.is(MemoryDb.liveImages - before, 0, "no live image once the file has moved");
  assert.equal(await inspect(file), { ok: "ok", rows: 1000, bytes: 199 * 100 + 1 + 800 * 2000, own: true });
});

test("a rolled-back transaction that spilled pages: the file written is still the committed state", async () => {
  const file = await filled(500);
  const db = await DurableSqlite.open(file, { workingCopy: "in-place" });
  await db.execute(insert(0, 5, 100));
  // Far more than SQLite's page cache (2 MB): pages are written to the file before the end, then rolled back.
  const failed = db.transaction((tx) => {
    for (let i = 0; i < 3000; i++) tx.run(`INSERT INTO t VALUES (?, ?)`, [`big${i}`, "w".repeat(2000)]);
    tx.run(`UPDATE t SET v = 'spilled' WHERE k LIKE 'k%'`);
    throw new Error("no");
  });
  assert.is(await failed.then(() => "resolved", (err: Error) => err.message), "no");
  await db.execute(insert(5, 5, 100));
  await db.close({ compact: true });
  assert.equal(await inspect(file), { ok: "ok", rows: 510, bytes: 510 * 100, own: true });
});

test("compact() in place, then more writes: both the folded file and the later state are right", async () => {
  const file = await filled(2000);
  const db = await DurableSqlite.open(file, { workingCopy: "in-place" });
  // Assertions after the closes: a failing one must not leave a store open (its lock keeps the process alive).
  let live = -1;
  let compacted: Awaited<ReturnType<typeof inspect>> | undefined;
  let counts: unknown[] = [];
  try {
    await db.execute(insert(0, 20, 100));
    const before = MemoryDb.liveImages;
    await db.compact();
    live = MemoryDb.liveImages - before;
    compacted = await inspect(file);
    await db.execute(insert(20, 20, 100));
    await db.execute([[`DELETE FROM t WHERE k = 'new0'`]]);
    const other = await DurableSqlite.open(file); // another process sees the file plus the journal
    counts = [db.get(`SELECT count(*) AS n FROM t`)?.n, other.get(`SELECT count(*) AS n FROM t`)?.n];
    await other.close();
  } finally {
    await db.close({ compact: true });
  }
  assert.is(live, 1, "compact() used the working copy's own file");
  assert.equal(compacted, { ok: "ok", rows: 2020, bytes: 2020 * 100, own: true }, "the compacted file");
  assert.equal(counts, [2039, 2039], "this copy and another process after more writes");
  assert.equal(await inspect(file), { ok: "ok", rows: 2039, bytes: 2039 * 100, own: true }, "after the close");
});

test.run();
