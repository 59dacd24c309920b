/**
 * Durability of the multi-process sql.js database (src/storage/sqlite/durable-db.ts), proven with
 * real child processes (test/fixtures/storage/writer.ts):
 *   (a) a resolved write survives kill -9 right after     (b) another process sees it on its next read
 *   (c) concurrent writers never lose writes              (d) no crash leaves the store unreadable
 *   (e) the cost of a write does not grow with the store size
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import { DurableSqlite, type SqlStatement } from "../../src/storage/sqlite/durable-db.js";
import { HEADER_SIZE, parseRecords } from "../../src/storage/sqlite/journal.js";
import { StorageError, type MapStore } from "../../src/storage/types.js";
import { seededRandom } from "../helpers/seed.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WRITER = path.join(ROOT, "test/fixtures/storage/writer.ts");
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-durable-"));
process.on("exit", () => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let dirs = 0;
const { random } = seededRandom();
const newDb = () => path.join(tmpRoot, String(dirs++), "prosody.sqlite");

// ------------------------------------------------------------------------------------------------
// Child process helper

interface Child {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr(): string;
  waitFor(pred: (line: string, index: number) => boolean, timeoutMs?: number): Promise<string>;
  request(cmd: string): Promise<string>;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnWriter(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", WRITER, ...args], {
    cwd: ROOT,
    env: { ...process.env, WRITER_SEED: String(Math.floor(random() * 2 ** 31)), ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const lines: string[] = [];
  let partial = "";
  let err = "";
  let waiters: { pred: (l: string, i: number) => boolean; from: number; resolve(l: string): void }[] = [];
  const check = () => {
    waiters = waiters.filter((w) => {
      for (let i = w.from; i < lines.length; i++) {
        if (w.pred(lines[i]!, i)) {
          w.resolve(lines[i]!);
          return false;
        }
      }
      w.from = lines.length;
      return true;
    });
  };
  proc.stdout.setEncoding("utf8");
  proc.stdout.on("data", (d: string) => {
    partial += d;
    const parts = partial.split("\n");
    partial = parts.pop()!;
    lines.push(...parts);
    check();
  });
  proc.stderr.setEncoding("utf8");
  proc.stderr.on("data", (d: string) => (err += d));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on("close", (code, signal) => resolve({ code, signal })),
  );
  const child: Child = {
    proc,
    lines,
    stderr: () => err,
    waitFor(pred, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for output; stderr: ${err}; lines: ${lines.slice(-5).join(" | ")}`)), timeoutMs);
        timer.unref();
        void closed.then(() =>
          setTimeout(() => reject(new Error(`child exited while waiting; stderr: ${err}; last lines: ${lines.slice(-5).join(" | ")}`)), 50),
        );
        waiters.push({
          pred,
          from: 0,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        check();
      });
    },
    request(cmd) {
      const from = lines.length;
      proc.stdin.write(cmd + "\n");
      return child.waitFor((_l, i) => i >= from);
    },
    closed,
  };
  return child;
}

const ackedOf = (c: Child) => c.lines.filter((l) => l.startsWith("acked ")).map((l) => Number(l.slice(6)));

/** All host-wide keys of map store "m" → decoded JSON value, read by a fresh in-process instance. */
async function contents(file: string): Promise<Map<string, unknown>> {
  const db = await DurableSqlite.open(file);
  try {
    const out = new Map<string, unknown>();
    for (const r of db.all(`SELECT "key", "type", "value" FROM "prosody" WHERE "store"='m' AND "user"=''`)) {
      out.set(String(r.key), r.type === "json" ? JSON.parse(String(r.value)) : r.value);
    }
    return out;
  } finally {
    await db.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------

test("(a) every acknowledged write survives kill -9 right after (1 and 16 in flight)", async () => {
  for (const inflight of [1, 16]) {
    const file = newDb();
    const w = spawnWriter(["write", file, "a", "1000000", String(inflight)]);
    let acks = 0;
    await w.waitFor((l) => l.startsWith("acked ") && ++acks >= 120);
    w.proc.kill("SIGKILL");
    const { signal } = await w.closed;
    assert.is(signal, "SIGKILL");
    const acked = ackedOf(w);
    assert.ok(acked.length >= 120);
    const t0 = Date.now();
    const data = await contents(file); // also proves the dead writer's lock was released
    assert.ok(Date.now() - t0 < 5000, "opening after kill -9 must not wait for a stale lock");
    for (const i of acked) {
      const v = data.get(`a${i}`) as { i: number } | undefined;
      assert.ok(v, `acked write a${i} (of ${acked.length}, inflight ${inflight}) is missing`);
      assert.is(v.i, i);
    }
  }
});

test("(b) a write by one process is visible to another on its next read, across compactions", async () => {
  const file = newDb();
  const a = spawnWriter(["serve", file]);
  const b = spawnWriter(["serve", file]);
  try {
    await a.waitFor((l) => l === "ready");
    await b.waitFor((l) => l === "ready");
    assert.is(await b.request("get k1"), "val undefined");
    assert.is(await a.request('set k1 {"v":1}'), "ok");
    assert.is(await b.request("get k1"), 'val {"v":1}');
    assert.is(await b.request('set k1 {"v":2,"by":"b"}'), "ok");
    assert.is(await a.request("get k1"), 'val {"v":2,"by":"b"}');
    assert.is(await a.request("del k1"), "ok");
    assert.is(await b.request("get k1"), "val undefined");
    // A compaction by A replaces both files; B must notice and keep seeing everything.
    assert.is(await a.request('set k2 "two"'), "ok");
    assert.match(await a.request("compact"), /^ok gen \d+$/);
    assert.is(await b.request("get k2"), 'val "two"');
    assert.is(await a.request('set k3 "three"'), "ok");
    assert.is(await b.request("get k3"), 'val "three"');
    assert.match(await b.request("compact"), /^ok gen \d+$/);
    assert.is(await b.request('set k4 "four"'), "ok");
    assert.is(await a.request("get k4"), 'val "four"');
    assert.is(await a.request("get k3"), 'val "three"');
    // The parent process is a third reader.
    const db = await openSqlDatabase(file);
    const m = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
    assert.is(await m.get(null, "k4"), "four");
    assert.is(await b.request('set k5 "five"'), "ok");
    assert.is(await m.get(null, "k5"), "five");
    await db.close();
  } finally {
    a.proc.stdin.end("exit\n");
    b.proc.stdin.end("exit\n");
    await Promise.all([a.closed, b.closed]);
  }
});

test("(c) 4 processes writing concurrently lose nothing (distinct keys + same-key increments)", async () => {
  const file = newDb();
  const COUNT = 250;
  const INCRS = 60;
  // A small compaction threshold: compactions happen while the others write.
  const kids = [0, 1, 2, 3].map((id) => spawnWriter(["hammer", file, String(id), String(COUNT), String(INCRS)], { COMPACT_BYTES: "65536" }));
  const results = await Promise.all(kids.map((k) => k.closed));
  results.forEach((r, i) => assert.is(r.code, 0, `writer ${i} failed: ${kids[i]!.stderr()}`));
  kids.forEach((k) => assert.ok(k.lines.includes("done")));
  const data = await contents(file);
  for (let id = 0; id < 4; id++) {
    for (let i = 0; i < COUNT; i++) {
      const v = data.get(`h${id}-${i}`) as { id: string; i: number } | undefined;
      assert.ok(v && v.i === i && v.id === String(id), `h${id}-${i} missing`);
    }
  }
  assert.is(data.get("counter"), String(4 * INCRS), "every increment counted exactly once");
  assert.is(data.size, 4 * COUNT + 1);
});

test("(d) kill -9 at any point of writes and compactions never leaves the store unreadable", async () => {
  const file = newDb();
  const dir = path.dirname(file);
  // A long-lived reader that follows the store without ever reopening it.
  const reader = spawnWriter(["serve", file]);
  await reader.waitFor((l) => l === "ready");
  const acked = new Map<string, number>(); // prefix → highest acked index (-1: none)
  const crashPoints = [
    "append:before-write",
    "append:after-write",
    "append:after-sync",
    "compact:before-db-rename",
    "compact:after-db-rename",
    "compact:before-journal-rename",
    "compact:after-journal-rename",
  ];
  const plan: { prefix: string; env: Record<string, string>; killAfterMs?: number }[] = [];
  let n = 0;
  for (const point of crashPoints) {
    plan.push({ prefix: `c${n++}-`, env: { COMPACT_BYTES: "4096", CRASH_AT: point, CRASH_AFTER: String(1 + Math.floor(random() * 3)) } });
  }
  for (let i = 0; i < 6; i++) {
    plan.push({ prefix: `r${n++}-`, env: { COMPACT_BYTES: String(2048 + Math.floor(random() * 8192)) }, killAfterMs: Math.floor(random() * 150) });
  }

  const verify = async (label: string) => {
    const data = await contents(file); // must open
    for (const [prefix, top] of acked) {
      let m = -1;
      while (data.has(`${prefix}${m + 1}`)) m++;
      assert.ok(m >= top, `${label}: ${prefix}: acked up to ${top} but only ${m} present`);
      assert.ok(m <= top + 1, `${label}: ${prefix}: ${m} present, more than one beyond the last ack ${top}`);
      const extra = [...data.keys()].filter((k) => k.startsWith(prefix) && Number(k.slice(prefix.length)) > m);
      assert.equal(extra, [], `${label}: ${prefix}: not a prefix`);
    }
  };

  try {
    for (const step of plan) {
      const w = spawnWriter(["write", file, step.prefix, "100000", "1"], step.env);
      if (step.killAfterMs !== undefined) {
        await w.waitFor((l) => l.startsWith("acked "));
        await sleep(step.killAfterMs);
        w.proc.kill("SIGKILL");
      }
      const { signal } = await w.closed;
      assert.is(signal, "SIGKILL", `${step.prefix} ${JSON.stringify(step.env)} should have died: ${w.stderr()}`);
      const a = ackedOf(w);
      acked.set(step.prefix, a.length ? Math.max(...a) : -1);
      // The live reader sees every acked write on its next read (no lock, no reopen).
      const top = acked.get(step.prefix)!;
      if (top >= 0) {
        const got = await reader.request(`get ${step.prefix}${top}`);
        assert.ok(got.startsWith(`val {"i":${top},`), `${step.prefix}: reader got ${got}`);
      }
      await verify(`${step.prefix} (${step.env.CRASH_AT ?? `kill after ${step.killAfterMs} ms`})`);
      // (the lock directory stays: see lock.test.ts for its leftovers)
      const left = fs.readdirSync(dir).filter((n) => n !== ".prosody-ts-locks").sort();
      assert.equal(left, ["prosody.sqlite", "prosody.sqlite.sqljs-journal"], "no leftovers once a process has opened the store");
    }

    // A torn record at the tail (power loss mid-append): ignored by readers, cut by the next writer.
    const journal = file + ".sqljs-journal";
    const torn = Buffer.alloc(8 + 40, 0x41);
    torn.writeUInt32LE(500, 0); // claims 500 bytes, only 40 follow
    fs.appendFileSync(journal, torn);
    assert.is(await reader.request('set after-torn "ok"'), "ok");
    await verify("after a torn tail");
    assert.is((await contents(file)).get("after-torn"), "ok");
    const buf = fs.readFileSync(journal);
    const parsed = parseRecords(buf.subarray(HEADER_SIZE), journal, HEADER_SIZE);
    assert.is(HEADER_SIZE + parsed.validLength, buf.length, "the torn tail was truncated before appending");
  } finally {
    reader.proc.stdin.end("exit\n");
    await reader.closed;
  }
});

test("background compaction: a crash between its two renames loses nothing; the next writer rebases", async () => {
  const file = newDb();
  const journal = file + ".sqljs-journal";
  const w = spawnWriter(["write", file, "bg-", "100000", "4"], { COMPACT_BYTES: "8192", CRASH_AT: "compact:after-db-rename" });
  const { signal } = await w.closed;
  assert.is(signal, "SIGKILL", w.stderr());
  const top = Math.max(...ackedOf(w));
  // The DB is a generation ahead of the journal and says how much of it it holds (application_id).
  const db = fs.readFileSync(file);
  const jgen = fs.readFileSync(journal).readUInt32LE(8);
  assert.is(db.readUInt32BE(60), jgen + 1, "DB one generation ahead of the journal");
  const base = db.readUInt32BE(68);
  assert.ok(base > HEADER_SIZE && base <= fs.statSync(journal).size, `base offset ${base}`);

  // A fresh reader sees every acknowledged write (the DB plus the journal's records after base).
  let data = await contents(file);
  for (let i = 0; i <= top; i++) assert.ok(data.has(`bg-${i}`), `bg-${i} missing`);

  // The next writer moves those records into a journal of the DB's generation before appending.
  const opened = await openSqlDatabase(file);
  const m = createSqlProvider({ host: "example.com", db: opened }).open("m", "map") as MapStore;
  await m.set(null, "after", "ok");
  assert.is(fs.readFileSync(journal).readUInt32LE(8), fs.readFileSync(file).readUInt32BE(60), "journal rebased");
  await opened.close();
  data = await contents(file);
  for (let i = 0; i <= top; i++) assert.ok(data.has(`bg-${i}`), `bg-${i} missing after the rebase`);
  assert.is(data.get("after"), "ok");
});

test("background compaction: writes go on while the image is written, and every one is kept", async () => {
  const db = await openSqlDatabase(newDb(), { compactThresholdBytes: 16 * 1024 });
  const m = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  // Waves of writes until two background compactions have been installed between them (the
  // snapshot is built in a worker thread, so how many waves that takes depends on the machine).
  const deadline = Date.now() + 60_000;
  let n = 0;
  for (let wave = 0; wave < 30 || (db.engine.sqlite.stats.compactions < 2 && Date.now() < deadline); wave++) {
    const writes: Promise<void>[] = [];
    for (let i = n; i < n + 20; i++) writes.push(m.set(null, `k${i}`, { i, pad: "x".repeat(200) }));
    n += 20;
    await Promise.all(writes);
  }
  for (let i = 0; i < n; i++) assert.equal(await m.get(null, `k${i}`), { i, pad: "x".repeat(200) });
  const file = db.engine.sqlite.file;
  await db.close(); // waits for a background compaction in progress
  assert.ok(db.engine.sqlite.stats.compactions >= 2, `compactions: ${db.engine.sqlite.stats.compactions}`);
  assert.ok(db.engine.sqlite.stats.workerSnapshots >= 2, "images built from the files by the snapshot worker");
  assert.is(db.engine.sqlite.lastCompactionError, undefined);
  const data = await contents(file);
  for (let i = 0; i < n; i++) assert.ok(data.has(`k${i}`), `k${i} missing after reopening`);
});

test("background compaction on this thread (no worker): writes go on, every one is kept, nothing left behind", async () => {
  const db = await DurableSqlite.open(newDb(), { compactThresholdBytes: 16 * 1024, compactInWorker: false });
  await db.execute([[`CREATE TABLE t (k TEXT)`]]);
  let n = 0;
  const deadline = Date.now() + 30_000;
  while ((db.stats.compactions < 3 || n < 300) && Date.now() < deadline) {
    const writes: Promise<unknown>[] = [];
    for (let i = n; i < n + 10; i++) writes.push(db.execute([[`INSERT INTO t VALUES (?)`, [`k${i} ${"z".repeat(100)}`]]]));
    n += 10;
    await Promise.all(writes);
  }
  const file = db.file;
  await db.close();
  assert.ok(db.stats.compactions >= 3, `compactions: ${db.stats.compactions}`);
  assert.is(db.stats.workerSnapshots, 0, "no image came from the worker");
  assert.is(db.lastCompactionError, undefined);
  assert.equal(fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(path.basename(file) + ".tmp-")), []);
  const again = await DurableSqlite.open(file);
  assert.equal(again.get(`SELECT count(*) AS n FROM t`), { n });
  await again.close();
});

test("background compaction: a failed image write is not retried on every commit", async () => {
  let attempts = 0;
  const db = await openSqlDatabase(newDb(), {
    compactThresholdBytes: 4096,
    hooks: {
      at(point) {
        if (point !== "compact:before-image-write") return;
        attempts++;
        throw new Error("No space left on device (simulated)");
      },
    },
  });
  const m = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  let n = 0;
  // Commits until the first attempt has failed (the snapshot comes from a low-priority worker
  // thread, so how many commits that takes depends on the machine), then 60 more.
  const deadline = Date.now() + 30_000;
  while (attempts === 0 && Date.now() < deadline) {
    await m.set(null, `k${n}`, { i: n, pad: "x".repeat(200) });
    n++;
    await new Promise((r) => setTimeout(r, 2));
  }
  try {
    assert.is(attempts, 1, "the first compaction was attempted");
    for (let end = n + 60; n < end; n++) await m.set(null, `k${n}`, { i: n, pad: "x".repeat(200) }); // 60 commits
    assert.is(attempts, 1, "one attempt, then a pause before the next");
    assert.match(String(db.engine.sqlite.lastCompactionError), /compaction failed: No space left on device/);
    for (let i = 0; i < n; i++) assert.equal(await m.get(null, `k${i}`), { i, pad: "x".repeat(200) }); // writes unaffected
  } finally {
    await db.close();
  }
});

test("(e) the cost of a write does not grow with the store size", async () => {
  const file = newDb();
  const db = await openSqlDatabase(file, { compactMinBytes: 64 * 1024 });
  const m = createSqlProvider({ host: "example.com", db }).open("invite_token", "map") as MapStore;
  const invite = (i: number) => ({
    token: `tok${i}`.padEnd(24, "x"),
    uri: `xmpp:example.com?register;preauth=tok${i}`,
    jid: "example.com",
    type: "register",
    allow_registration: true,
    created_at: 1795932662 + i,
    expires: 1796537462 + i,
    additional_data: { groups: {} },
  });
  const fill = async (from: number, to: number) => {
    const ins = `INSERT INTO "prosody" ("host","user","store","key","type","value") VALUES (?,?,?,?,?,?)`;
    for (let i = from; i < to; i += 2000) {
      const batch: SqlStatement[] = [];
      for (let j = i; j < Math.min(to, i + 2000); j++) batch.push([ins, ["example.com", "", "invite_token", `fill${j}`, "json", JSON.stringify(invite(j))]]);
      await db.engine.sqlite.execute(batch);
    }
  };
  const measure = async (writes: number, tag: string) => {
    const s0 = { ...db.engine.sqlite.stats };
    for (let i = 0; i < writes; i++) await m.set(null, `${tag}${i}`.padEnd(24, "x"), invite(i));
    const s1 = db.engine.sqlite.stats;
    return {
      journalPerWrite: (s1.journalBytesAppended - s0.journalBytesAppended) / writes,
      totalPerWrite: (s1.journalBytesAppended - s0.journalBytesAppended + s1.dbBytesWritten - s0.dbBytesWritten) / writes,
      fsyncsPerWrite: (s1.fsyncs - s0.fsyncs) / writes,
      compactions: s1.compactions - s0.compactions,
      dbSize: fs.statSync(file).size,
    };
  };
  await fill(0, 300);
  const small = await measure(1500, "s");
  await fill(300, 30_000);
  await db.engine.sqlite.compact();
  const big = await measure(1500, "b");
  await db.close();
  const ratioJ = big.journalPerWrite / small.journalPerWrite;
  const ratioT = big.totalPerWrite / small.totalPerWrite;
  console.log(
    `  (e) store ~300 rows: ${small.journalPerWrite.toFixed(0)} journal B/write, ${small.totalPerWrite.toFixed(0)} B/write incl. ${small.compactions} compaction(s);` +
      ` ~31k rows (DB ${(big.dbSize / 1e6).toFixed(1)} MB): ${big.journalPerWrite.toFixed(0)} / ${big.totalPerWrite.toFixed(0)} B/write, ${big.compactions} compaction(s)`,
  );
  assert.ok(ratioJ > 0.9 && ratioJ < 1.1, `journal bytes per write changed with size: ×${ratioJ.toFixed(2)}`);
  assert.ok(ratioT < 1.5, `bytes written per write grew with size: ×${ratioT.toFixed(2)}`);
  assert.ok(small.fsyncsPerWrite <= 1 && big.fsyncsPerWrite <= 1);
  assert.ok(small.compactions >= 1, "the small store compacted (amortised cost included)");
  // No whole-DB rewrite per write at the large size (its threshold is the 10 MB DB size).
  assert.is(big.compactions, 0);
  // Amortisation: a compaction writes the DB once the journal has grown past the DB's size at the
  // previous compaction; the DB grows meanwhile by about the same amount, so DB bytes per write stay
  // below ~2× the journal bytes per write, whatever the store size.
  assert.ok(small.totalPerWrite <= 3 * small.journalPerWrite, `compaction not amortised: ${small.totalPerWrite} vs ${small.journalPerWrite}`);
});

// ------------------------------------------------------------------------------------------------
// In-process behaviour of the write path

test("group commit of plain statement groups: one failing group rejects alone, the others commit", async () => {
  const db = await DurableSqlite.open(newDb());
  await db.execute([[`CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)`]]);
  await db.execute([[`INSERT INTO t VALUES (?, ?)`, ["a", 1]]]);
  const results = await Promise.allSettled([
    db.execute([[`INSERT INTO t VALUES (?, ?)`, ["b", 2]]]),
    db.execute([
      [`INSERT INTO t VALUES (?, ?)`, ["c", 3]],
      [`INSERT INTO t VALUES (?, ?)`, ["a", 9]], // duplicate key: this whole group fails
    ]),
    db.execute([[`INSERT INTO t VALUES (?, ?)`, ["d", 4]]]),
  ]);
  assert.equal(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.is(db.stats.guardedCommits, 1, "only the batch with the failing group was redone with savepoints");
  assert.equal(db.all(`SELECT k, v FROM t ORDER BY k`), [
    { k: "a", v: 1 },
    { k: "b", v: 2 },
    { k: "d", v: 4 },
  ]);
  // The failing group first, failing on its second statement: its first one must not stay.
  const second = await Promise.allSettled([
    db.execute([
      [`INSERT INTO t VALUES (?, ?)`, ["e", 5]],
      [`INSERT INTO t VALUES (?, ?)`, ["a", 9]],
    ]),
    db.execute([[`INSERT INTO t VALUES (?, ?)`, ["f", 6]]]),
  ]);
  assert.equal(second.map((r) => r.status), ["rejected", "fulfilled"]);
  assert.is(db.stats.guardedCommits, 2);
  await Promise.all([db.execute([[`INSERT INTO t VALUES ('g', 7)`]]), db.execute([[`DELETE FROM t WHERE k = 'g'`]])]);
  assert.is(db.stats.guardedCommits, 2, "batches that succeed take no savepoints");
  await db.transaction((tx) => tx.run(`INSERT INTO t VALUES ('h', 8)`));
  await db.execute([[`DELETE FROM t WHERE k = 'h'`]]);
  assert.is(db.stats.guardedCommits, 3, "a transaction() callback always runs in a savepoint");
  assert.equal(db.all(`SELECT k FROM t ORDER BY k`).map((r) => r.k), ["a", "b", "d", "f"]);
  await db.close();
  const again = await DurableSqlite.open(db.file);
  assert.equal(again.all(`SELECT k FROM t ORDER BY k`).map((r) => r.k), ["a", "b", "d", "f"]);
  await again.close();
});

test("a commit failing after its append (its fdatasync already running) is taken back whole", async () => {
  let failNext = 0;
  const file = newDb();
  const db = await DurableSqlite.open(file, {
    hooks: {
      at(point) {
        if (point === "append:before-commit" && failNext > 0) {
          failNext--;
          throw new Error("commit failed (simulated)");
        }
      },
    },
  });
  await db.execute([[`CREATE TABLE t (k TEXT)`]]);
  await db.execute([[`INSERT INTO t VALUES ('kept1')`]]);
  failNext = 3; // more failures than syncs may overlap: each must end its sync's bookkeeping
  for (let i = 0; i < 3; i++) {
    const err = await db.execute([[`INSERT INTO t VALUES ('lost')`]]).then(() => undefined, (e: unknown) => e);
    assert.instance(err, StorageError);
    assert.match(String(err), /commit failed \(simulated\)/);
  }
  const inTime = await Promise.race([
    db.execute([[`INSERT INTO t VALUES ('kept2')`]]).then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
  ]);
  assert.ok(inTime, "writes go on after failed commits (no sync slot leaked)");
  assert.equal(db.all(`SELECT k FROM t ORDER BY rowid`).map((r) => r.k), ["kept1", "kept2"]);
  await db.close();
  // The journal does not bring the rejected writes back.
  const again = await DurableSqlite.open(file);
  assert.equal(again.all(`SELECT k FROM t ORDER BY rowid`).map((r) => r.k), ["kept1", "kept2"]);
  await again.close();
});

test("group commit: a failing group rejects alone; transactions roll back on throw", async () => {
  const db = await DurableSqlite.open(newDb());
  await db.execute([[`CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)`]]);
  const results = await Promise.allSettled([
    db.execute([[`INSERT INTO t VALUES (?, ?)`, ["a", 1]]]),
    db.execute([
      [`INSERT INTO t VALUES (?, ?)`, ["b", 2]],
      [`INSERT INTO t VALUES (?, ?)`, ["a", 9]], // duplicate key: the whole group fails
    ]),
    db.execute([[`INSERT INTO t VALUES (?, ?)`, ["c", 3]]]),
    db.transaction((tx) => {
      tx.run(`INSERT INTO t VALUES (?, ?)`, ["d", 4]);
      throw new Error("changed my mind");
    }),
    db.transaction((tx) => {
      const n = Number(tx.get(`SELECT count(*) AS n FROM t`)!.n);
      tx.run(`INSERT INTO t VALUES (?, ?)`, ["e", n]);
      return n;
    }),
  ]);
  assert.equal(
    results.map((r) => r.status),
    ["fulfilled", "rejected", "fulfilled", "rejected", "fulfilled"],
  );
  assert.instance((results[1] as PromiseRejectedResult).reason, StorageError);
  assert.is((results[3] as PromiseRejectedResult).reason.message, "changed my mind");
  assert.is((results[4] as PromiseFulfilledResult<number>).value, 2);
  assert.equal(db.all(`SELECT k, v FROM t ORDER BY k`), [
    { k: "a", v: 1 },
    { k: "c", v: 3 },
    { k: "e", v: 2 },
  ]);
  assert.ok(db.stats.records <= 3, "the queued groups shared journal records");
  await db.close();
  // Replayed by another instance from the journal: the same state.
  const again = await DurableSqlite.open(db.file);
  assert.equal(again.all(`SELECT k FROM t ORDER BY k`).map((r) => r.k), ["a", "c", "e"]);
  await again.close({ compact: true });
  await again.close({ compact: true }); // twice is fine
  await again.close();
  try {
    await again.execute([[`DELETE FROM t`]]);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, StorageError);
  }
  try {
    again.all(`SELECT 1`);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, StorageError);
  }
});

test("rejects transaction control and non-deterministic misuse up front", async () => {
  const db = await DurableSqlite.open(newDb());
  for (const sql of ["BEGIN", "commit", " ROLLBACK", "SAVEPOINT x"]) {
    try {
      await db.execute([[sql]]);
      assert.unreachable(sql);
    } catch (err) {
      assert.instance(err, StorageError);
    }
  }
  try {
    await db.execute([[`SELECT ?`, [NaN]]]);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, StorageError);
  }
  try {
    await db.transaction(() => Promise.resolve(1));
    assert.unreachable();
  } catch (err) {
    assert.instance(err, StorageError);
  }
  await db.close();
});

test("open: refuses a non-SQLite file with a StorageError naming it; creates 0750 dir / 0640 files", async () => {
  const file = newDb();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, "this is not a database, just some text that is long enough to have a header........................");
  try {
    await DurableSqlite.open(file);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, StorageError);
    assert.ok((err as Error).message.includes(file), (err as Error).message);
  }
  // A non-empty -wal of real SQLite: its content would be invisible to us.
  const walDb = newDb();
  fs.mkdirSync(path.dirname(walDb), { recursive: true });
  fs.writeFileSync(walDb + "-wal", "pending frames");
  try {
    await DurableSqlite.open(walDb);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, StorageError);
    assert.match((err as Error).message, /-wal is not empty/);
  }
  const sub = path.join(tmpRoot, "modes", "deeper", "prosody.sqlite");
  const old = process.umask(0o022);
  try {
    const db = await DurableSqlite.open(sub);
    await db.close();
  } finally {
    process.umask(old);
  }
  assert.is(fs.statSync(path.dirname(sub)).mode & 0o777, 0o750);
  assert.is(fs.statSync(sub).mode & 0o777, 0o640);
  assert.is(fs.statSync(sub + ".sqljs-journal").mode & 0o777, 0o640);
});

test.run();
