/**
 * A cross-process writer lock that the kernel releases when its holder dies (even on `kill -9`).
 *
 * Mechanism (Linux): holding the lock = listening on an abstract unix socket
 * `"\0prosody-ts:" + sha256(realpath of the db file)`. Abstract names live in the kernel only (no file
 * to clean up) and are freed the moment the listening fd is closed — by `release()` or by process
 * death. A second `listen()` on the name fails with EADDRINUSE.
 *
 * Waiting without polling: a waiter connects to the holder's socket and sleeps until that connection
 * closes (the holder destroys its accepted connections on release; the kernel resets them if the
 * holder dies), then races to listen again. A holder that saw waiters yields for a moment before its
 * next acquisition, so one busy process cannot starve the others.
 *
 * Abstract sockets are Linux-specific; on other systems `acquire()` fails with a StorageError from
 * listen(). The lock is per socket, so two DurableSqlite instances in one process also exclude each
 * other.
 */
import crypto from "node:crypto";
import net from "node:net";
import { StorageError } from "../types.js";

export function lockName(realFile: string): string {
  return "\0prosody-ts:" + crypto.createHash("sha256").update(realFile).digest("hex");
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class ProcessLock {
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  /** Someone waited for us while we held the lock: be polite before the next acquisition. */
  private contended = false;
  private lastRelease = 0;
  /** Called (on our event loop) when another process starts waiting for the lock we hold. */
  onWaiter: (() => void) | undefined;

  constructor(
    private readonly name: string,
    /** The database file, for error messages. */
    private readonly file: string,
    private readonly timeoutMs = 30_000,
  ) {}

  get held(): boolean {
    return this.server !== null;
  }

  /** Another process is waiting for us to release. */
  get hasWaiters(): boolean {
    return this.conns.size > 0;
  }

  /** Milliseconds since another process last waited for this lock (Infinity: never). */
  get sinceLastWaiter(): number {
    return this.lastWaiterAt === undefined ? Infinity : performance.now() - this.lastWaiterAt;
  }
  private lastWaiterAt: number | undefined;

  async acquire(): Promise<void> {
    if (this.server) throw new StorageError(`${this.file}: write lock acquired twice by the same owner`);
    if (this.contended) {
      this.contended = false;
      // Let a waiter (woken by our release) take its turn.
      const since = performance.now() - this.lastRelease;
      if (since < 2) await sleep(1);
    }
    const deadline = Date.now() + this.timeoutMs;
    let refused = 0;
    for (;;) {
      if (await this.tryListen()) return;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new StorageError(
          `${this.file}: timed out after ${Math.round(this.timeoutMs / 1000)} s waiting for the write lock (another process holds it)`,
        );
      }
      const how = await this.waitForHolder(remaining);
      if (how === "refused") {
        // Name busy but nobody accepting (holder between bind and listen, or just closing): back off.
        // The first refusal usually means "just released": retry at once, then 1, 2, 4 … 20 ms.
        refused++;
        if (refused > 1) await sleep(Math.min(20, 2 ** (refused - 2)));
      } else refused = 0;
    }
  }

  release(): void {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    server.close(); // closes the listening fd now: the name is free for others immediately
    this.lastRelease = performance.now();
  }

  private tryListen(): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((sock) => {
        this.contended = true;
        this.lastWaiterAt = performance.now();
        this.conns.add(sock);
        sock.on("error", () => {});
        sock.on("close", () => this.conns.delete(sock));
        if (this.server !== server) sock.destroy();
        else this.onWaiter?.();
      });
      const onError = (err: NodeJS.ErrnoException) => {
        server.close();
        if (err.code === "EADDRINUSE") resolve(false);
        else reject(new StorageError(`${this.file}: cannot take the write lock (abstract unix socket): ${err.message}`));
      };
      server.once("error", onError);
      server.listen({ path: this.name }, () => {
        server.off("error", onError);
        server.on("error", () => {});
        this.server = server;
        resolve(true);
      });
    });
  }

  /** Connects to the holder and waits until it lets go (or dies). */
  private waitForHolder(maxMs: number): Promise<"released" | "refused" | "timeout"> {
    return new Promise((resolve) => {
      let connected = false;
      let done = false;
      const sock = net.connect({ path: this.name });
      const finish = (how: "released" | "refused" | "timeout") => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sock.destroy();
        resolve(how);
      };
      const timer = setTimeout(() => finish("timeout"), maxMs);
      sock.on("connect", () => {
        connected = true;
      });
      sock.on("data", () => {});
      sock.on("error", (err: NodeJS.ErrnoException) => {
        finish(!connected && (err.code === "ECONNREFUSED" || err.code === "ENOENT" || err.code === "EAGAIN") ? "refused" : "released");
      });
      sock.on("close", () => finish("released"));
    });
  }
}
