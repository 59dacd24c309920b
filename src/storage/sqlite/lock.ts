/**
 * A cross-process lock that only processes allowed to write the data directory can take or block,
 * and that the kernel releases when its holder dies (even on `kill -9`).
 *
 * Entries are listening unix sockets named `w.<key digest>.<ticket>.<random>` in the data
 * directory's lock directory (lock-dir.ts: its permissions keep other users out). To acquire:
 *   1. listen on a temporary name; ticket = highest ticket of the key in a listing + 1; rename
 *      our socket to its entry name;
 *   2. list again: an entry of the key ordered after ours (ticket, then random part) means our
 *      listing was stale: withdraw (unlink, close) and start over;
 *   3. while an entry of the key ordered before ours exists: connect to the nearest one and sleep
 *      until that connection closes (its owner released or gave up: it closes our connection; it
 *      died: the kernel does), then list again. One that refuses connections is dead: unlink it.
 *      None before ours: we hold the lock.
 * Release: unlink our entry, then close our socket, which wakes our successor.
 *
 * Why only one holder: take two live entries A and B, A renamed into place first. B lists after
 * its rename, so sees A: if B is ordered before A, B withdraws in step 2; otherwise A stays before
 * B for as long as A lives, accepting connections (entries get their name only once they listen,
 * and names are never reused, so "refused" means dead for good), and B cannot pass step 3.
 * First come, first served: each waiter waits for its predecessor only, and new tickets go last.
 * Our successor's connection is also the "someone is waiting" signal (`onWaiter`, `hasWaiters`).
 * Two ProcessLock instances exclude each other just as two processes do.
 */
import type net from "node:net";
import { StorageError } from "../types.js";
import { LockDir, keyDigest, randomName } from "./lock-dir.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
  /** Our entry's socket, while we hold or wait for the lock. */
  private server: net.Server | null = null;
  private own: Entry | null = null;
  private dir: LockDir | null = null;
  private holding = false;
  /** Connections of processes waiting behind us. */
  private readonly conns = new Set<net.Socket>();
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
    if (this.server) throw new StorageError(`${this.file}: write lock acquired twice by the same owner`);
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const dir = LockDir.of(this.dataDir);
      const ref: { server?: net.Server } = {};
      const { server, name } = await dir.publish(
        () => `${this.prefix}${Math.max(0, ...entriesOf(dir.list(), this.prefix).map((e) => e.ticket)) + 1}.${randomName()}`,
        (sock) => this.accept(ref.server, sock),
      );
      ref.server = server;
      this.server = server;
      this.dir = dir;
      const own = entriesOf([name], this.prefix)[0]!;
      this.own = own;
      try {
        let entries = entriesOf(dir.list(), this.prefix);
        if (entries.some((e) => before(own, e))) {
          this.withdraw(); // our listing was stale: someone later is already queued
          continue;
        }
        for (;;) {
          let pred: Entry | undefined;
          for (const e of entries) if (before(e, own) && (!pred || before(pred, e))) pred = e;
          if (!pred) {
            this.holding = true;
            return;
          }
          const how = await this.waitFor(dir, pred.name, deadline - Date.now());
          if (how === "dead") dir.unlink(pred.name);
          else if (how === "busy") await sleep(1);
          else if (how === "timeout") {
            throw new StorageError(
              `${this.file}: timed out after ${this.timeoutMs >= 1000 ? `${Math.round(this.timeoutMs / 1000)} s` : `${this.timeoutMs} ms`} waiting for the write lock (another process holds it)`,
            );
          }
          entries = entriesOf(dir.list(), this.prefix);
        }
      } catch (err) {
        this.withdraw();
        throw err;
      }
    }
  }

  release(): void {
    this.withdraw();
  }

  private withdraw(): void {
    const server = this.server;
    if (!server) return;
    // Unlink first: once our successor wakes (when we close), our entry must be gone.
    if (this.own) this.dir?.unlink(this.own.name);
    this.server = null;
    this.own = null;
    this.holding = false;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    server.close();
  }

  private accept(server: net.Server | undefined, sock: net.Socket): void {
    if (!server || server !== this.server) {
      sock.destroy();
      return;
    }
    this.lastWaiterAt = performance.now();
    this.conns.add(sock);
    sock.on("error", () => {});
    sock.on("close", () => this.conns.delete(sock));
    if (this.holding) this.onWaiter?.();
  }

  /** Connects to the entry before ours and waits until it goes away. */
  private async waitFor(dir: LockDir, name: string, maxMs: number): Promise<"released" | "dead" | "gone" | "busy" | "closing" | "timeout"> {
    if (maxMs <= 0) return "timeout";
    const probe = await dir.probe(name);
    if (probe.state !== "live") return probe.state;
    const sock = probe.sock;
    return new Promise((resolve) => {
      const finish = (how: "released" | "timeout") => {
        clearTimeout(timer);
        sock.destroy();
        resolve(how);
      };
      const timer = setTimeout(() => finish("timeout"), maxMs);
      sock.on("data", () => {});
      sock.on("error", () => {});
      sock.on("close", () => finish("released"));
    });
  }
}
