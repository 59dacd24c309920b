/**
 * The cross-process lock and "database open" markers (src/storage/sqlite/lock.ts, presence.ts,
 * lock-dir.ts): mutual exclusion between real processes under kill -9 (a seeded stress run, the
 * seed printed; LOCK_STRESS_SEED=<n> repeats one), release by the kernel, first come first served,
 * the waiter signal, timeouts, and the lock directory's owner and mode rules.
 * The attack by another local user is in lock-attack.test.ts.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LOCK_DIR_NAME } from "../../src/storage/sqlite/lock-dir.js";
import { ProcessLock } from "../../src/storage/sqlite/lock.js";
import { Presence } from "../../src/storage/sqlite/presence.js";
import { StorageError } from "../../src/storage/types.js";
import { prng } from "../fixtures/internal/gen.js";
import { skip } from "../helpers/skip.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const COUNTER = path.join(ROOT, "test/fixtures/storage/lock-counter.ts");
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-lock-"));
process.on("exit", () => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let dirs = 0;
const newDir = (mode = 0o750) => {
  const d = path.join(tmpRoot, String(dirs++));
  fs.mkdirSync(d);
  fs.chmodSync(d, mode);
  return d;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isRoot = process.getuid?.() === 0;

interface Child {
  proc: ChildProcessWithoutNullStreams;
  lines: string[];
  stderr: () => string;
  /** Resolves when the n-th line matching `prefix` has been printed (n counts from 1). */
  nth(prefix: string, n: number, timeoutMs?: number): Promise<void>;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnCounter(args: string[], as?: { uid: number; gid: number }): Child {
  const proc = spawn(process.execPath, ["--import", "tsx", COUNTER, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"], ...as });
  const lines: string[] = [];
  let partial = "";
  let err = "";
  let waiters: { prefix: string; n: number; resolve(): void }[] = [];
  const count = (prefix: string) => lines.reduce((k, l) => k + (l.startsWith(prefix) ? 1 : 0), 0);
  proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    partial += chunk;
    const parts = partial.split("\n");
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      waiters = waiters.filter((w) => (l.startsWith(w.prefix) && count(w.prefix) >= w.n ? (w.resolve(), false) : true));
    }
  });
  proc.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.on("close", (code, signal) => r({ code, signal })));
  return {
    proc,
    lines,
    stderr: () => err,
    closed,
    nth(prefix, n, timeoutMs = 60_000) {
      if (count(prefix) >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${n}th "${prefix}" line after ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
        const w = { prefix, n, resolve: () => (clearTimeout(timer), resolve()) };
        waiters.push(w);
        void closed.then(() => {
          if (waiters.includes(w)) {
            clearTimeout(timer);
            reject(new Error(`exited before its ${n}th "${prefix}" line; stderr: ${err}`));
          }
        });
      });
    },
  };
}

test("stress: 6 processes × 2 lock instances × 40 increments under the lock, 2 of them killed -9 while holding it", async () => {
  const seed = Number(process.env.LOCK_STRESS_SEED ?? Date.now() % 1_000_000);
  console.log(`  (seed ${seed}; repeat with LOCK_STRESS_SEED=${seed})`);
  const rand = prng(seed);
  const data = newDir();
  const counter = path.join(data, "counter");
  const kids = Array.from({ length: 6 }, (_, i) => spawnCounter([data, counter, "40", String(seed * 10 + i), "2"]));
  // Two victims, each killed right after taking the lock for the k-th time (then 0–2 ms later).
  const victims = [0, 1, 2, 3, 4, 5].sort(() => rand() - 0.5).slice(0, 2);
  const kills = victims.map(async (v) => {
    const k = 1 + Math.floor(rand() * 60);
    await kids[v]!.nth("held", k, 120_000);
    await sleep(Math.floor(rand() * 3));
    kids[v]!.proc.kill("SIGKILL");
  });
  await Promise.all(kills);
  const results = await Promise.all(kids.map((k) => k.closed));
  results.forEach((r, i) => {
    if (victims.includes(i)) assert.is(r.signal, "SIGKILL", `victim ${i} was killed`);
    else assert.is(r.code, 0, `survivor ${i} finished: ${kids[i]!.stderr()}`);
  });
  const reported = kids.reduce((n, k) => n + k.lines.filter((l) => l.startsWith("inc ")).length, 0);
  const final = Number(fs.readFileSync(counter, "utf8"));
  // A victim may have renamed its new value in but died before printing it: at most one each.
  assert.ok(final >= reported && final <= reported + victims.length, `counter ${final}, increments reported ${reported} (seed ${seed})`);
  assert.ok(reported >= 4 * 80, `survivors finished their ${4 * 80} increments (${reported})`);
  // Every value was written once: no two holders read the same value.
  const values = kids.flatMap((k) => k.lines.filter((l) => l.startsWith("inc ")).map((l) => Number(l.slice(4))));
  assert.is(new Set(values).size, values.length, `a value was written twice (seed ${seed})`);
  console.log(`  (${reported} increments, final counter ${final}, victims ${victims.join(", ")})`);
});

test("kill -9 of the holder: a waiter gets the lock at once, and the dead entry is removed", async () => {
  const data = newDir();
  const holder = spawnCounter([data, path.join(data, "counter"), "hold", "1"]);
  await holder.nth("held", 1);
  const lock = new ProcessLock(data, "counter", "counter", 10_000);
  const waiting = lock.acquire();
  await sleep(200);
  assert.not.ok(lock.held, "the live holder excludes us");
  const killedAt = Date.now();
  holder.proc.kill("SIGKILL");
  await waiting;
  assert.ok(Date.now() - killedAt < 2000, `took the lock ${Date.now() - killedAt} ms after the kill`);
  const names = fs.readdirSync(path.join(data, LOCK_DIR_NAME));
  assert.is(names.length, 1, `only our entry is left: ${names.join(" ")}`);
  lock.release();
  // Our socket stays a moment, idle under a temporary name, for the next acquisition.
  assert.match(fs.readdirSync(path.join(data, LOCK_DIR_NAME)).join(" "), /^t\.[\w-]+$/);
  lock.close();
  assert.equal(fs.readdirSync(path.join(data, LOCK_DIR_NAME)), []);
});

test("two instances in one process: first come first served, the waiter signal, a timeout with a clear error", async () => {
  const data = newDir();
  const a = new ProcessLock(data, "k", "file-a");
  const b = new ProcessLock(data, "k", "file-b");
  const c = new ProcessLock(data, "k", "file-c");
  let signalled = 0;
  a.onWaiter = () => signalled++;
  await a.acquire();
  assert.ok(a.held);
  assert.not.ok(a.hasWaiters);
  assert.is(a.sinceLastWaiter, Infinity);
  const order: string[] = [];
  const pb = b.acquire().then(() => order.push("b"));
  await sleep(50);
  const pc = c.acquire().then(() => order.push("c"));
  await sleep(50);
  assert.ok(a.hasWaiters, "b's wait reached the holder");
  assert.is(signalled, 1);
  assert.ok(a.sinceLastWaiter < 1000);
  assert.not.ok(b.held || c.held);
  a.release();
  await pb;
  assert.equal(order, ["b"]);
  assert.ok(b.hasWaiters, "c waits behind b");
  // a comes back while c waits: it queues behind c
  const pa = a.acquire().then(() => order.push("a"));
  b.release();
  await pc;
  c.release();
  await pa;
  assert.equal(order, ["b", "c", "a"]);
  // Timeout: a holds, d gives up with a clear error and leaves no entry behind.
  const d = new ProcessLock(data, "k", "/some/file.dat", 300);
  const t0 = Date.now();
  try {
    await d.acquire();
    assert.unreachable("acquired a held lock");
  } catch (err) {
    assert.instance(err, StorageError);
    assert.match((err as Error).message, "/some/file.dat: timed out after 300 ms waiting for the write lock (another process holds it)");
  }
  assert.ok(Date.now() - t0 >= 290);
  const entries = () => fs.readdirSync(path.join(data, LOCK_DIR_NAME)).filter((n) => n.startsWith("w."));
  assert.is(entries().length, 1, "d's entry is gone");
  a.release();
  // Other keys are independent.
  const x = new ProcessLock(data, "k", "x");
  const y = new ProcessLock(data, "other", "y");
  await x.acquire();
  await y.acquire();
  x.release();
  y.release();
  assert.equal(entries(), []);
  for (const l of [a, b, c, d, x, y]) l.close();
  assert.equal(fs.readdirSync(path.join(data, LOCK_DIR_NAME)), [], "close() removes the idle sockets");
});

test("a waiter's connection that reaches the reused socket after its entry ended is closed, not counted", async () => {
  const data = newDir();
  const dir = path.join(data, LOCK_DIR_NAME);
  const a = new ProcessLock(data, "k", "f");
  await a.acquire();
  const first = fs.readdirSync(dir).find((n) => n.startsWith("w."))!;
  // A waiter connects to our first entry (in the kernel at once) and names it; before our event
  // loop accepts that connection, we release and take the lock again (same socket, new entry).
  const late = net.connect(path.join(dir, first));
  late.on("error", () => {});
  late.write(`${first}\n`);
  const closed = new Promise((r) => late.on("close", r));
  a.release();
  await a.acquire();
  const second = fs.readdirSync(dir).find((n) => n.startsWith("w."))!;
  assert.is.not(second, first);
  // Closed by us (it waits for an entry that is gone), not kept as a waiter of our new entry.
  const outcome = await Promise.race([closed.then(() => "closed"), sleep(2000).then(() => "still open")]);
  assert.is(outcome, "closed");
  assert.not.ok(a.hasWaiters);
  // One naming the current entry counts.
  let signalled = 0;
  a.onWaiter = () => signalled++;
  const now = net.connect(path.join(dir, second));
  now.write(`${second}\n`);
  for (let i = 0; i < 100 && !a.hasWaiters; i++) await sleep(10);
  assert.ok(a.hasWaiters);
  assert.is(signalled, 1);
  const gone = new Promise((r) => now.on("close", r));
  a.release();
  await gone;
  a.close();
});

test("the lock directory gets the data directory's owner and lets in only who may write it", async () => {
  const priv = newDir(0o750);
  const pl = new ProcessLock(priv, "k", "f");
  await pl.acquire();
  pl.release();
  const st = fs.statSync(path.join(priv, LOCK_DIR_NAME));
  assert.is(st.mode & 0o777, 0o700);
  // Opened up while in use: noticed at the next acquisition.
  fs.chmodSync(path.join(priv, LOCK_DIR_NAME), 0o777);
  try {
    await pl.acquire();
    assert.unreachable("used a lock directory opened to everyone");
  } catch (err) {
    assert.match((err as Error).message, "mode 0777 let in users who may not write");
  }
  fs.chmodSync(path.join(priv, LOCK_DIR_NAME), 0o700);
  await pl.acquire();
  pl.release();
  const shared = newDir(0o770);
  const l = new ProcessLock(shared, "k", "f");
  await l.acquire();
  l.release();
  assert.is(fs.statSync(path.join(shared, LOCK_DIR_NAME)).mode & 0o777, 0o770);
  assert.is(fs.statSync(path.join(shared, LOCK_DIR_NAME)).gid, fs.statSync(shared).gid);
  // Too open: refused with a message saying why and what to do; nothing is changed.
  const open = newDir(0o750);
  fs.mkdirSync(path.join(open, LOCK_DIR_NAME));
  fs.chmodSync(path.join(open, LOCK_DIR_NAME), 0o777);
  try {
    await new ProcessLock(open, "k", "f").acquire();
    assert.unreachable("used a world-writable lock directory");
  } catch (err) {
    assert.instance(err, StorageError);
    assert.match((err as Error).message, `${path.join(open, LOCK_DIR_NAME)}: mode 0777`);
    assert.match((err as Error).message, "refusing to use it for locks");
    assert.match((err as Error).message, `rm -r ${path.join(open, LOCK_DIR_NAME)}`);
  }
  assert.is(fs.statSync(path.join(open, LOCK_DIR_NAME)).mode & 0o777, 0o777);
  // A symbolic link in its place: refused.
  const linked = newDir(0o750);
  fs.symlinkSync(newDir(0o700), path.join(linked, LOCK_DIR_NAME));
  try {
    await new ProcessLock(linked, "k", "f").acquire();
    assert.unreachable("followed a symbolic link");
  } catch (err) {
    assert.match((err as Error).message, "not a directory (or is a symbolic link)");
  }
});

test("the lock directory's owner: another user's is refused; root creating one gives it to the data directory's owner", async (ctx) => {
  if (!isRoot) return skip(ctx, "owner checks need root (to chown to uid 65534)");
  // Owned by another user: refused.
  const foreign = newDir(0o750);
  fs.mkdirSync(path.join(foreign, LOCK_DIR_NAME), { mode: 0o700 });
  fs.chownSync(path.join(foreign, LOCK_DIR_NAME), 65534, 65534);
  try {
    await new ProcessLock(foreign, "k", "f").acquire();
    assert.unreachable("used a lock directory owned by nobody");
  } catch (err) {
    assert.match((err as Error).message, "owned by uid 65534, not by the data directory's owner (uid 0) or root");
  }
  // Root creating it in a data directory owned by another user gives it to that user.
  const theirs = newDir(0o750);
  fs.chownSync(theirs, 65534, 65534);
  const t = new ProcessLock(theirs, "k", "f");
  await t.acquire();
  t.release();
  const ts = fs.statSync(path.join(theirs, LOCK_DIR_NAME));
  assert.equal([ts.uid, ts.gid, ts.mode & 0o777], [65534, 65534, 0o700]);
});

test("leftovers of killed processes are removed by the next process that uses the directory", async () => {
  const data = newDir();
  const dir = path.join(data, LOCK_DIR_NAME);
  // A holder killed -9 while holding a lock nobody takes again, one killed between listen and rename.
  const holder = spawnCounter([data, path.join(data, "counter"), "hold", "1"]);
  await holder.nth("held", 1);
  holder.proc.kill("SIGKILL");
  await holder.closed;
  fs.writeFileSync(path.join(dir, "t.deadtmpname0"), "");
  fs.writeFileSync(path.join(dir, "o.someDatabase.1.deadmarker00"), "");
  fs.writeFileSync(path.join(dir, "README"), "not ours");
  const leftovers = fs.readdirSync(dir).filter((n) => n !== "README");
  assert.is(leftovers.length, 3, leftovers.join(" "));
  // Only entries older than a minute are probed (a probe is a connection, a live holder's waiter signal).
  const young = "t.youngdeadtmp";
  fs.writeFileSync(path.join(dir, young), "");
  for (const n of leftovers) fs.utimesSync(path.join(dir, n), new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
  const live = new ProcessLock(data, "other key", "f");
  await live.acquire();
  for (let i = 0; i < 50 && fs.readdirSync(dir).length > 3; i++) await sleep(20);
  const left = fs.readdirSync(dir).sort();
  assert.is(left.length, 3, left.join(" "));
  assert.equal(left.slice(0, 2), ["README", young]);
  assert.match(left[2]!, /^w\./, "our own entry stays");
  live.release();
});

test("group-writable data directory: members of the group with another uid share the locks with its owner", async (ctx) => {
  if (!isRoot) return skip(ctx, "needs root (to run a group member as uid 65534)");
  // Traversable for uid 65534; the data directory root:65534 0770.
  const outer = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-lock-group-"));
  process.on("exit", () => fs.rmSync(outer, { recursive: true, force: true }));
  fs.chmodSync(outer, 0o755);
  const data = path.join(outer, "data");
  fs.mkdirSync(data);
  fs.chownSync(data, 0, 65534);
  fs.chmodSync(data, 0o770);
  const counter = path.join(data, "counter");
  const member = { uid: 65534, gid: 65534 };
  // The member creates the lock directory and holds the lock; we (root) wait, then get it when it dies.
  const holder = spawnCounter([data, counter, "hold", "1"], member);
  await holder.nth("held", 1);
  const st = fs.statSync(path.join(data, LOCK_DIR_NAME));
  assert.equal([st.uid, st.gid, st.mode & 0o777], [65534, 65534, 0o770]);
  const lock = new ProcessLock(data, "counter", counter, 10_000);
  const waiting = lock.acquire();
  await sleep(200);
  assert.not.ok(lock.held, "the member's lock excludes root");
  holder.proc.kill("SIGKILL");
  await waiting;
  // We hold it: the member waits for us (it can connect to our socket: we see it waiting).
  const counting = spawnCounter([data, counter, "5", "7"], member);
  for (let i = 0; i < 100 && !lock.hasWaiters; i++) await sleep(50);
  assert.ok(lock.hasWaiters, "the member waits on our socket");
  assert.not.ok(counting.lines.includes("held"));
  lock.release();
  assert.is((await counting.closed).code, 0, counting.stderr());
  // Mixed uids counting together lose nothing.
  const kids = [spawnCounter([data, counter, "20", "1", "2"]), spawnCounter([data, counter, "20", "2", "2"], member), spawnCounter([data, counter, "20", "3"], member)];
  const results = await Promise.all(kids.map((k) => k.closed));
  results.forEach((r, i) => assert.is(r.code, 0, kids[i]!.stderr()));
  assert.is(Number(fs.readFileSync(counter, "utf8")), 5 + 40 + 40 + 20);
});

test("a user who may not write the data directory gets a clear error, not a lock", async (ctx) => {
  if (!isRoot) return skip(ctx, "needs root (to run as uid 65534)");
  const outer = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-lock-ro-"));
  process.on("exit", () => fs.rmSync(outer, { recursive: true, force: true }));
  fs.chmodSync(outer, 0o755);
  const data = path.join(outer, "data");
  fs.mkdirSync(data);
  fs.chmodSync(data, 0o755);
  const nobody = { uid: 65534, gid: 65534 };
  const first = spawnCounter([data, path.join(data, "counter"), "1", "1"], nobody);
  assert.is.not((await first.closed).code, 0);
  assert.match(first.stderr(), `${path.join(data, LOCK_DIR_NAME)}: cannot create the lock directory: EACCES`);
  assert.match(first.stderr(), "only the owner of the data directory, and its group if it may write there, can take our locks");
  const lock = new ProcessLock(data, "counter", "counter");
  await lock.acquire(); // creates it, 0700
  const second = spawnCounter([data, path.join(data, "counter"), "1", "1"], nobody);
  assert.is.not((await second.closed).code, 0);
  assert.match(second.stderr(), `${path.join(data, LOCK_DIR_NAME)}: cannot use it as our lock directory: EACCES`);
  lock.release();
});

test("a data directory path longer than a unix socket path allows", async () => {
  let deep = newDir();
  while (Buffer.byteLength(deep) < 200) deep = path.join(deep, "a-rather-long-directory-name");
  fs.mkdirSync(deep, { recursive: true });
  const a = new ProcessLock(deep, "k", "f", 2000);
  const b = new ProcessLock(deep, "k", "f", 2000);
  await a.acquire();
  const pb = b.acquire();
  await sleep(50);
  assert.ok(a.hasWaiters);
  a.release();
  await pb;
  b.release();
  const p = (await Presence.announce(path.join(deep, "prosody.sqlite")))!;
  assert.ok(p, "announced");
  assert.is(await p.othersOpen(), false);
  p.close();
});

test("open markers: others seen while they live, dead and fake ones ignored", async () => {
  const data = newDir();
  const file = path.join(data, "prosody.sqlite");
  const me = (await Presence.announce(file))!;
  assert.is(await me.othersOpen(), false);
  const other = (await Presence.announce(file))!;
  assert.is(await me.othersOpen(), true);
  assert.is(await other.othersOpen(), true);
  other.close();
  assert.is(await me.othersOpen(), false);
  // Another database in the same directory does not count.
  const unrelated = (await Presence.announce(path.join(data, "other.sqlite")))!;
  assert.is(await me.othersOpen(), false);
  unrelated.close();
  // A process that died with it open (kill -9): its entry refuses connections and is removed.
  const lockDir = path.join(data, LOCK_DIR_NAME);
  const mine = fs.readdirSync(lockDir).find((n) => n.startsWith("o."))!;
  const dead = mine.replace(/\.\d+\.[^.]+$/, ".1.deadbeef");
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(path.join(lockDir, dead), r));
  assert.is(await me.othersOpen(), true);
  await new Promise((r) => srv.close(r));
  fs.writeFileSync(path.join(lockDir, dead), ""); // (libuv removed it on close; a leftover of a kill -9 stays)
  assert.is(await me.othersOpen(), false);
  assert.not.ok(fs.existsSync(path.join(lockDir, dead)), "the dead entry was removed");
  me.close();
  assert.equal(fs.readdirSync(lockDir), []);
});

test.run();
