/**
 * The compaction worker: it refuses files that are not the ones named (another process compacted
 * meanwhile), writes an image that holds exactly the state asked for, keeps its copy between
 * requests (also across the installation of its own image), and runs at the lowest CPU priority.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { SnapshotWorker } from "../../src/storage/sqlite/snapshot-client.js";
import { skip } from "../helpers/skip.js";

// The main thread's priority before any worker starts (not 0 when the tests run under nice).
const MAIN_NICE = os.getPriority();
// The worker these tests talk to directly (each DurableSqlite below starts and ends its own).
const snapshots = new SnapshotWorker();
const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-snap-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

function filesOf(db: DurableSqlite) {
  const journal = db.file + ".sqljs-journal";
  return {
    dbFile: db.file,
    dbIno: fs.statSync(db.file).ino,
    journalFile: journal,
    jIno: fs.statSync(journal).ino,
    jGen: db.generation,
    to: fs.statSync(journal).size,
  };
}

async function rowsOf(file: string): Promise<string[]> {
  const db = await DurableSqlite.open(file);
  try {
    return db.all(`SELECT k FROM t ORDER BY k`).map((r) => String(r.k));
  } finally {
    await db.close();
  }
}

test("a snapshot of replaced files is refused; a current one is written beside the DB and matches the store", async () => {
  const file = path.join(root, "a.sqlite");
  const db = await DurableSqlite.open(file);
  await db.execute([[`CREATE TABLE t (k TEXT)`]]);
  await db.execute([[`INSERT INTO t VALUES ('one')`]]);
  const at = filesOf(db);
  const img = { gen: db.generation + 1, base: at.to, mode: 0o600 };
  const err = await snapshots.image({ ...at, dbIno: at.dbIno + 1, ...img }).then(() => undefined, (e: Error) => e);
  assert.match(String(err), /was replaced/);
  const w = await snapshots.image({ ...at, ...img });
  assert.is(path.dirname(w.tmp), root);
  assert.ok(path.basename(w.tmp).startsWith("a.sqlite.tmp-"), w.tmp);
  assert.is(fs.statSync(w.tmp).size, w.size);
  assert.is(fs.statSync(w.tmp).mode & 0o777, 0o600);
  const header = fs.readFileSync(w.tmp).subarray(0, 100);
  assert.is(header.readUInt32BE(60), img.gen, "generation in the header");
  assert.is(header.readUInt32BE(68), img.base, "journal base in the header");
  const copy = path.join(root, "copy.sqlite");
  fs.renameSync(w.tmp, copy);
  assert.equal(await rowsOf(copy), ["one"]);
  await db.close();
});

test("an idle worker ends (its copies with it); the next image starts a new one from the files", async () => {
  const idle = new SnapshotWorker(300);
  const file = path.join(root, "idle.sqlite");
  const db = await DurableSqlite.open(file);
  try {
    await db.execute([[`CREATE TABLE t (k TEXT)`]]);
    await db.execute([[`INSERT INTO t VALUES ('one')`]]);
    const first = await idle.image({ ...filesOf(db), gen: 5, base: 0, mode: 0o600 });
    fs.rmSync(first.tmp);
    assert.ok(idle.running());
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(idle.running(), "not before the idle time");
    await new Promise((r) => setTimeout(r, 500));
    assert.not.ok(idle.running(), "ended after it");
    await db.execute([[`INSERT INTO t VALUES ('two')`]]);
    const second = await idle.image({ ...filesOf(db), gen: 5, base: 0, mode: 0o600 });
    assert.is(second.loads, 1, "a new copy, from the files");
    const copy = path.join(root, "idle-copy.sqlite");
    fs.renameSync(second.tmp, copy);
    assert.equal(await rowsOf(copy), ["one", "two"]);
  } finally {
    await db.close();
    await idle.end();
  }
});

test("the worker brings its copy forward instead of rebuilding it", async () => {
  const file = path.join(root, "b.sqlite");
  const db = await DurableSqlite.open(file);
  await db.execute([[`CREATE TABLE t (k TEXT)`]]);
  for (let i = 0; i < 5; i++) await db.execute([[`INSERT INTO t VALUES (?)`, [`a${i}`]]]);
  const first = await snapshots.image({ ...filesOf(db), gen: 7, base: 0, mode: 0o640 });
  assert.is(first.replayed, 6, "everything the first time");
  assert.is(first.loads, 1);
  for (let i = 0; i < 3; i++) await db.execute([[`INSERT INTO t VALUES (?)`, [`b${i}`]]]);
  snapshots.follow({ ...filesOf(db), to: filesOf(db).to }); // a hint: applies these three now
  await db.execute([[`INSERT INTO t VALUES ('c')`]]);
  const second = await snapshots.image({ ...filesOf(db), gen: 7, base: 0, mode: 0o640 });
  assert.is(second.replayed, 1, "only the record after the hint");
  assert.is(second.loads, 0, "no rebuild from the files");
  const copy = path.join(root, "b-copy.sqlite");
  fs.renameSync(second.tmp, copy);
  assert.equal(await rowsOf(copy), ["a0", "a1", "a2", "a3", "a4", "b0", "b1", "b2", "c"]);
  fs.rmSync(first.tmp, { force: true });
  await db.close();
});

test("background compactions: the worker follows its own images into place, every write is kept once", async () => {
  // Plain INSERTs (no key): a record applied twice or skipped by the worker shows up as a wrong row set.
  const db = await DurableSqlite.open(path.join(root, "c.sqlite"), { compactThresholdBytes: 16 * 1024 });
  await db.execute([[`CREATE TABLE t (k TEXT)`]]);
  const deadline = Date.now() + 60_000;
  let n = 0;
  while ((db.stats.compactions < 3 || n < 600) && Date.now() < deadline) {
    const writes: Promise<unknown>[] = [];
    for (let i = n; i < n + 10; i++) writes.push(db.execute([[`INSERT INTO t VALUES (?)`, [`k${String(i).padStart(5, "0")} ${"x".repeat(100)}`]]]));
    n += 10;
    await Promise.all(writes);
  }
  const file = db.file;
  await db.close();
  assert.ok(db.stats.workerSnapshots >= 3, `worker images: ${db.stats.workerSnapshots}`);
  assert.is(db.stats.workerLoads, 1, "the copy was built from the files once, then brought forward");
  const want = Array.from({ length: n }, (_, i) => `k${String(i).padStart(5, "0")} ${"x".repeat(100)}`);
  assert.equal(await rowsOf(file), want);
});

test("the worker keeps one copy per store: two stores compacting by turns are each loaded once", async () => {
  const a = await DurableSqlite.open(path.join(root, "d1.sqlite"), { compactThresholdBytes: 16 * 1024 });
  const b = await DurableSqlite.open(path.join(root, "d2.sqlite"), { compactThresholdBytes: 16 * 1024 });
  for (const db of [a, b]) await db.execute([[`CREATE TABLE t (k TEXT)`]]);
  const deadline = Date.now() + 60_000;
  let n = 0;
  while ((a.stats.compactions < 2 || b.stats.compactions < 2) && Date.now() < deadline) {
    const writes: Promise<unknown>[] = [];
    for (let i = n; i < n + 10; i++) for (const db of [a, b]) writes.push(db.execute([[`INSERT INTO t VALUES (?)`, [`k${i} ${"y".repeat(100)}`]]]));
    n += 10;
    await Promise.all(writes);
  }
  await a.close();
  await b.close();
  assert.ok(a.stats.workerSnapshots >= 2 && b.stats.workerSnapshots >= 2, `images: ${a.stats.workerSnapshots}, ${b.stats.workerSnapshots}`);
  assert.is(a.stats.workerLoads + b.stats.workerLoads, 2, "each store's copy was built once");
  for (const db of [a, b]) assert.is((await rowsOf(db.file)).length, n);
});

test("hints start the worker only past half the compaction threshold: fewer writes cost no second copy", async () => {
  const own = new SnapshotWorker();
  const db = await DurableSqlite.open(path.join(root, "hint", "prosody.sqlite"), { snapshots: own, compactThresholdBytes: 256 * 1024, foldIdleMs: 0 });
  try {
    await db.execute([[`CREATE TABLE t (k TEXT)`]]);
    // ~100 KB of journal in many commits: past an eighth of the threshold (hints), short of half.
    for (let i = 0; i < 70; i++) await db.execute([[`INSERT INTO t VALUES (?)`, [`${i} ${"x".repeat(1400)}`]]]);
    assert.ok(db.journalSize > 64 * 1024 && db.journalSize < 128 * 1024, `journal ${db.journalSize}`);
    assert.is(own.running(), false, "no worker thread");
    own.follow({ ...filesOf(db), to: filesOf(db).to });
    assert.is(own.running(), false, "a hint without start does not start one");
    // Past half the threshold (still under it): the worker starts and follows.
    for (let i = 0; i < 40; i++) await db.execute([[`INSERT INTO t VALUES (?)`, [`${i} ${"x".repeat(1400)}`]]]);
    assert.ok(db.journalSize > 128 * 1024 && db.journalSize < 256 * 1024, `journal ${db.journalSize}`);
    assert.is(own.running(), true, "started to follow");
    assert.is(db.stats.compactions, 0);
  } finally {
    await db.close();
    await own.end();
  }
});

test("the worker's young generation is bounded (V8 would let it grow to 48 MB and keep it)", async () => {
  const db = await DurableSqlite.open(path.join(root, "limits", "prosody.sqlite"), { compactInWorker: false });
  try {
    await db.execute([[`CREATE TABLE t (k TEXT PRIMARY KEY)`], [`INSERT INTO t VALUES ('a')`]]);
    const at = filesOf(db);
    const w = await snapshots.image({ ...at, gen: db.generation + 1, base: at.to, mode: 0o600 });
    fs.rmSync(w.tmp);
    const young = snapshots.limits()?.maxYoungGenerationSizeMb;
    assert.ok(young !== undefined && young <= 4, `maxYoungGenerationSizeMb ${young}`);
  } finally {
    snapshots.forget(db.file);
    await db.close();
  }
});

test("the worker thread runs at nice 19 (Linux)", (ctx) => {
  if (process.platform !== "linux") return skip(ctx, "thread priorities are read from Linux's /proc");
  const nices = fs.readdirSync("/proc/self/task").map((tid) => {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
  assert.ok(nices.includes(19), `thread nice values: ${nices.join(",")}`);
  assert.is(nices[0], MAIN_NICE, "the main thread keeps its priority");
});

test("the worker refuses a journal with a damaged middle record and a DB file changed in place", async () => {
  const file = path.join(root, "damaged.sqlite");
  const db = await DurableSqlite.open(file);
  await db.execute([[`CREATE TABLE t (k TEXT)`]]);
  for (const k of ["a", "b", "c", "d", "e"]) await db.execute([[`INSERT INTO t VALUES (?)`, [k]]]);
  const at = filesOf(db);
  const img = { gen: db.generation + 1, base: at.to, mode: 0o600 };
  // flip a bit in the payload of the second record (records 3..6 stay intact)
  const buf = fs.readFileSync(at.journalFile);
  const second = 16 + 8 + buf.readUInt32LE(16);
  const fd = fs.openSync(at.journalFile, "r+");
  fs.writeSync(fd, Buffer.from([buf[second + 12]! ^ 1]), 0, 1, second + 12);
  fs.closeSync(fd);
  const err = await snapshots.image({ ...at, ...img }).then(() => undefined, (e: Error) => e);
  assert.match(String(err), `journal damaged: ${at.journalFile}: damaged record at byte ${second}, 4 intact record(s) after it`);
  // the journal repaired, but the DB file changed in place by someone else (same inode)
  fs.writeFileSync(at.journalFile, buf);
  const dfd = fs.openSync(file, "r+");
  fs.writeSync(dfd, Buffer.from([0x7f]), 0, 1, 100);
  fs.closeSync(dfd);
  const err2 = await snapshots.image({ ...filesOf(db), ...img }).then(() => undefined, (e: Error) => e);
  assert.match(String(err2), "was changed by another program");
  await db.close();
});

test.run();
