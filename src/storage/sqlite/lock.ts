/**
 * A cross-process lock that only processes allowed to write the data directory can take or block,
 * and that the kernel releases when its holder dies (even on `kill -9`).
 *
 * Entries are listening unix sockets named `w.<key digest>.<ticket>.<random>` in the data
 * directory's lock directory (lock-dir.ts: its permissions keep other users out). To acquire:
 *   1. have a listening socket under a temporary name; ticket = highest ticket of the key in a
 *      listing + 1; rename our socket to its entry name;
 *   2. list again: an entry of the key ordered after ours (ticket, then random part) means our
 *      listing was stale: withdraw and start over;
 *   3. while an entry of the key ordered before ours exists: connect to the nearest one, say which
 *      entry we wait for, and sleep until that connection closes (its owner released or gave up:
 *      it closes our connection; it died: the kernel does), then list again. One that refuses
 *      connections is dead: unlink it. None before ours: we hold the lock.
 * Release (and withdrawing): rename our entry back to a temporary name, then close the connections
 * of those waiting for it, which wakes our successor.
 *
 * Why only one holder: take two live entries A and B, A renamed into place first. B lists after
 * its rename, so sees A: if B is ordered before A, B withdraws in step 2; otherwise A stays before
 * B for as long as A lives, accepting connections (a socket gets an entry name only while it
 * listens, and names are never reused, so "refused" means dead for good), and B cannot pass step 3.
 * First come, first served: each waiter waits for its predecessor only, and new tickets go last.
 *
 * The socket is kept (idle, under a temporary name) for the next acquisition for a moment, which
 * saves creating one per acquisition. A waiter's connection may therefore reach us after the
 * entry it aimed at has ended (it connected just before we renamed it away): that is why a waiter
 * names the entry it waits for, and we close connections naming any other. Connections to our
 * current entry are the "someone is waiting" signal (`onWaiter`, `hasWaiters`).
 * Two ProcessLock instances exclude each other just as two processes do.
 */
import type net from "node:net";
import { StorageError } from "../types.js";
import { LockDir, keyDigest, randomName } from "./lock-dir.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An idle socket is closed after this long unused; at most this many are kept per process. */
const IDLE_MS = 1000;
const MAX_IDLE = 64;
const idleLocks = new Set<ProcessLock>();

/** Locks with a socket: their names are removed when the process exits (a kill -9 leaves them, dead). */
const withSocket = new Set<ProcessLock>();
let exitHook = false;

interface Entry {
  name: string;
  ticket: number;
  rnd: string;
}

const before = (a: Entry, b: Entry) => a.ticket < b.ticket || (a.ticket === b.ticket && a.rnd < b.rnd);

function entriesOf(names: string[], prefix: string): Entry[] {
  const out: Entry[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const dot = name.indexOf(".", prefix.length);
    const ticket = Number(name.slice(prefix.length, dot));
    if (dot < 0 || !Number.isSafeInteger(ticket)) continue;
    out.push({ name, ticket, rnd: name.slice(dot + 1) });
  }
  return out;
}

export class ProcessLock {
  /** Our listening socket (kept between acquisitions for IDLE_MS), its directory, its current name. */
  private server: net.Server | null = null;
  private serverDir: LockDir | null = null;
  private name = "";
  /** Our entry while we wait for or hold the lock. */
  private own: Entry | null = null;
  /** Inside acquire() or holding. */
  private busy = false;
  private holding = false;
  /** Connections of processes waiting for our current entry, and those that have not said yet. */
  private readonly conns = new Set<net.Socket>();
  private readonly pending = new Set<net.Socket>();
  private idleTimer: NodeJS.Timeout | undefined;
  private lastWaiterAt: number | undefined;
  private readonly prefix: string;
  /** Called (on our event loop) when another process starts waiting for the lock we hold. */
  onWaiter: (() => void) | undefined;

  constructor(
    /** The directory whose writers may take the lock; the lock directory is created in it. */
    private readonly dataDir: string,
    /** What is locked, the same string in every process (e.g. a file name relative to `dataDir`). */
    key: string,
    /** The locked file, for error messages. */
    private readonly file: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.prefix = `w.${keyDigest(key)}.`;
  }

  get held(): boolean {
    return this.holding;
  }

  /** Another process is waiting for us to release. */
  get hasWaiters(): boolean {
    return this.holding && this.conns.size > 0;
  }

  /** Milliseconds since another process last waited for this lock (Infinity: never). */
  get sinceLastWaiter(): number {
    return this.lastWaiterAt === undefined ? Infinity : performance.now() - this.lastWaiterAt;
  }

  async acquire(): Promise<void> {
    if (this.busy) throw new StorageError(`${this.file}: write lock acquired twice by the same owner`);
    this.busy = true;
    this.notIdle();
    try {
      await this.take(Date.now() + this.timeoutMs);
    } catch (err) {
      this.endEntry();
      this.busy = false;
      this.idle();
      throw err;
    }
  }

  /** Releases the lock if held and closes the socket kept for the next acquisition. */
  close(): void {
    this.release();
    if (!this.busy) this.closeServer();
  }

  /** Lets go of the lock if we hold it (a no-op while an acquire() is still waiting). */
  release(): void {
    if (!this.holding) return;
    this.endEntry();
    this.busy = false;
    this.idle();
  }

  private async take(deadline: number): Promise<void> {
    for (;;) {
      const dir = LockDir.of(this.dataDir);
      if (this.server && this.serverDir !== dir) this.closeServer(); // the directory was replaced
      if (!this.server) {
        const ref: { server?: net.Server } = {};
        const { server, name } = await dir.listen((sock) => this.accept(ref.server, sock));
        ref.server = server;
        this.server = server;
        this.serverDir = dir;
        this.name = name;
        withSocket.add(this);
        if (!exitHook) {
          exitHook = true;
          process.once("exit", () => {
            for (const lock of withSocket) lock.serverDir?.unlink(lock.name);
          });
        }
      }
      this.server.ref();
      const own = entriesOf([`${this.prefix}${Math.max(0, ...entriesOf(dir.list(), this.prefix).map((e) => e.ticket)) + 1}.${randomName()}`], this.prefix)[0]!;
      try {
        dir.rename(this.name, own.name);
      } catch (err) {
        this.closeServer(); // our socket lost its name: start with a new one
        if (Date.now() > deadline) throw err;
        continue;
      }
      this.name = own.name;
      this.own = own;
      let entries = entriesOf(dir.list(), this.prefix);
      if (entries.some((e) => before(own, e))) {
        this.endEntry(); // our listing was stale: someone later is already queued
        continue;
      }
      for (;;) {
        let pred: Entry | undefined;
        for (const e of entries) if (before(e, own) && (!pred || before(pred, e))) pred = e;
        if (!pred) {
          this.holding = true;
          if (this.conns.size) this.lastWaiterAt = performance.now();
          return;
        }
        const how = await this.waitFor(dir, pred.name, deadline - Date.now());
        if (how === "dead") dir.unlink(pred.name);
        else if (how === "busy") await sleep(1);
        else if (how === "timeout") {
          const after = this.timeoutMs >= 1000 ? `${Math.round(this.timeoutMs / 1000)} s` : `${this.timeoutMs} ms`;
          throw new StorageError(`${this.file}: timed out after ${after} waiting for the write lock (another process holds it)`);
        }
        entries = entriesOf(dir.list(), this.prefix);
      }
    }
  }

  /** Ends our current entry (held or queued): renamed away first, then its waiters are woken. */
  private endEntry(): void {
    this.holding = false;
    if (this.own) {
      this.own = null;
      const tmp = `t.${randomName()}`;
      try {
        this.serverDir!.rename(this.name, tmp);
        this.name = tmp;
      } catch {
        this.closeServer(); // it lost its name (removed by hand?): not reusable
      }
    }
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    for (const c of this.pending) c.destroy();
    this.pending.clear();
  }

  private idle(): void {
    if (!this.server) return;
    this.server.unref();
    idleLocks.add(this);
    this.idleTimer = setTimeout(() => this.closeServer(), IDLE_MS).unref();
    if (idleLocks.size > MAX_IDLE) idleLocks.values().next().value?.closeServer();
  }

  private notIdle(): void {
    idleLocks.delete(this);
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private closeServer(): void {
    if (this.busy && this.own) return; // in use: closed when released
    this.notIdle();
    const server = this.server;
    if (!server) return;
    withSocket.delete(this);
    this.server = null;
    this.serverDir?.unlink(this.name);
    this.serverDir = null;
    for (const c of this.pending) c.destroy();
    this.pending.clear();
    server.close();
  }

  private accept(server: net.Server | undefined, sock: net.Socket): void {
    sock.on("error", () => {});
    if (!server || server !== this.server || !this.own) {
      sock.destroy();
      return;
    }
    // A waiter first names the entry it waits for; one naming another (ended) entry is closed.
    // While we hold the lock, count it at once (handing over early to a late one does no harm);
    // while we wait, only once it names our entry (keeping a late one could deadlock: it may be
    // ahead of us in the queue).
    const early = this.holding;
    if (early) this.counted(sock);
    else this.pending.add(sock);
    let said = "";
    const onData = (chunk: Buffer) => {
      said += chunk.toString("latin1");
      const nl = said.indexOf("\n");
      if (nl < 0) {
        if (said.length > 128) sock.destroy();
        return;
      }
      sock.off("data", onData);
      this.pending.delete(sock);
      if (server !== this.server || said.slice(0, nl) !== this.own?.name) sock.destroy();
      else if (!early) this.counted(sock);
    };
    sock.on("data", onData);
    sock.on("close", () => {
      this.pending.delete(sock);
      this.conns.delete(sock);
    });
  }

  private counted(sock: net.Socket): void {
    this.conns.add(sock);
    this.lastWaiterAt = performance.now();
    if (this.holding) this.onWaiter?.();
  }

  /** Connects to the entry before ours and waits until it goes away. */
  private async waitFor(dir: LockDir, name: string, maxMs: number): Promise<"released" | "dead" | "gone" | "busy" | "closing" | "timeout"> {
    if (maxMs <= 0) return "timeout";
    const probe = await dir.probe(name);
    if (probe.state !== "live") return probe.state;
    const sock = probe.sock;
    return new Promise((resolve) => {
      let done = false;
      const finish = (how: "released" | "timeout") => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        resolve(how);
      };
      const timer = setTimeout(() => finish("timeout"), maxMs);
      sock.on("data", () => {});
      // Its end of file (it closed our connection, or died) is the earliest sign; "close" follows.
      sock.on("end", () => finish("released"));
      sock.on("error", () => finish("released"));
      sock.on("close", () => finish("released"));
      sock.write(`${name}\n`);
    });
  }
}
