/**
 * Issue 15 item 3: the journal is folded into the DB file when writes go idle (foldIdleMs), so a
 * process opening the store after a burst of writes replays nothing, even when the burst stayed
 * under the size that triggers a compaction. A short journal (under foldIdleMinBytes) is left alone.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { HEADER_SIZE } from "../../src/storage/sqlite/journal.js";
import { SnapshotWorker } from "../../src/storage/sqlite/snapshot-client.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-foldidle-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDb = () => path.join(root, `d${n++}`, "prosody.sqlite");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function burst(db: DurableSqlite, writes: number, bytes: number): Promise<void> {
  await db.execute([[`CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT)`]]);
  await Promise.all(Array.from({ length: writes }, (_, i) => db.execute([[`INSERT OR REPLACE INTO t VALUES (?, ?)`, [`k${i}`, "v".repeat(bytes)]]])));
}

/** Waits (polling, generously) until `cond` holds; false if it never does. */
async function eventually(cond: () => boolean, ms = 20_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) return false;
    await sleep(50);
  }
  return true;
}

test("after a burst of writes goes idle, the journal is folded and a cold open replays nothing", async () => {
  const file = newDb();
  const db = await DurableSqlite.open(file, { foldIdleMs: 200, foldIdleMinBytes: 4096 });
  try {
    await burst(db, 200, 200); // ~50 KB of journal, far under the 8 MiB compaction threshold
    assert.ok(fs.statSync(db.journalFile).size > 40_000, "the burst is in the journal");
    assert.ok(await eventually(() => db.stats.idleFolds === 1 && fs.statSync(db.journalFile).size === HEADER_SIZE), "folded once idle");
    assert.is(db.stats.compactions, 1);
    const cold = await DurableSqlite.open(file, { workingCopy: "in-place" });
    assert.is(cold.stats.recordsReplayed, 0, "nothing left to replay");
    assert.is(cold.get(`SELECT count(*) AS n FROM t`)?.n, 200);
    await cold.close();
    // Writes after the fold start a new idle spell, folded again.
    await burst(db, 100, 200);
    assert.ok(await eventually(() => db.stats.idleFolds === 2 && fs.statSync(db.journalFile).size === HEADER_SIZE), "folded again");
  } finally {
    await db.close();
  }
});

test("a journal under foldIdleMinBytes is left alone", async () => {
  const db = await DurableSqlite.open(newDb(), { foldIdleMs: 100, foldIdleMinBytes: 1 << 20 });
  await burst(db, 20, 100);
  await sleep(600);
  assert.is(db.stats.idleFolds, 0);
  assert.is(db.stats.compactions, 0);
  await db.close();
});

test("on by default: 64 KiB of journal is folded about 2 s after the last write", async () => {
  const db = await DurableSqlite.open(newDb());
  await burst(db, 300, 300); // ~100 KB
  try {
    assert.ok(await eventually(() => db.stats.idleFolds === 1 && fs.statSync(db.journalFile).size === HEADER_SIZE), "folded with the default settings");
  } finally {
    await db.close();
  }
});

test("when writes go idle, the compaction worker (a copy of the store) ends, folded or not", async () => {
  const snapshots = new SnapshotWorker(600_000); // would otherwise live on for 10 minutes
  // Idle long enough that the checks below run before the fold, even on a loaded machine (at
  // 300 ms the worker's image under load took longer, and the fold had ended the worker already).
  const db = await DurableSqlite.open(newDb(), { snapshots, compactThresholdBytes: 16 * 1024, foldIdleMs: 2000 });
  try {
    await burst(db, 200, 200); // past the threshold: background compactions in the worker
    assert.ok(await eventually(() => db.stats.workerSnapshots > 0), "the worker built an image");
    assert.ok(snapshots.running());
    assert.ok(await eventually(() => !snapshots.running()), "the worker ended");
  } finally {
    await db.close();
    await snapshots.end();
  }
});

test("the worker's copy has ended before an idle fold builds its image (they never take memory together)", async () => {
  const snapshots = new SnapshotWorker(600_000);
  const workerAtImage: boolean[] = [];
  const db = await DurableSqlite.open(newDb(), {
    snapshots,
    compactThresholdBytes: 16 * 1024,
    foldIdleMs: 2000, // as above
    foldIdleMinBytes: 1,
    hooks: { at: (point) => point === "compact:before-image-write" && workerAtImage.push(snapshots.running()) },
  });
  try {
    await burst(db, 200, 200);
    assert.ok(await eventually(() => db.stats.workerSnapshots > 0), "the worker built an image");
    await burst(db, 10, 200); // under the threshold: left for the fold
    assert.ok(snapshots.running(), "the worker's copy is alive");
    const folded = await eventually(() => db.stats.idleFolds === 1 && fs.statSync(db.journalFile).size === HEADER_SIZE);
    assert.ok(folded, `folded once idle: ${JSON.stringify(db.stats)} journal ${fs.statSync(db.journalFile).size}`);
    assert.ok(workerAtImage.length >= 2, `a background image and the fold's: ${workerAtImage}`);
    assert.is(workerAtImage.at(-1), false, "the fold's image was built with no worker copy alive");
  } finally {
    await db.close();
    await snapshots.end();
  }
});

test.run();
