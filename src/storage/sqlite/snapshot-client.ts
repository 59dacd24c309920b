/**
 * The main thread's side of snapshot-worker.ts: a worker thread, started on first use, never
 * keeping the process alive while it has nothing to answer. Its owner decides how many stores share
 * it: the runtime's SQL databases share one (drivers/sql-database.ts); a DurableSqlite opened
 * without one starts its own and ends it on close. `available()` is false where the worker file
 * cannot be found (then callers build and write images in their own thread).
 */
import fs from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { FilesAt, ImageReply, ImageRequest, WorkerRequest } from "./snapshot-worker.js";

let found: string | null | undefined;

/** The built worker beside this module's bundle, or the TypeScript source when run from src/. */
function workerFile(): string | undefined {
  if (found !== undefined) return found ?? undefined;
  found = null;
  for (const name of ["./snapshot-worker.js", "./snapshot-worker.ts"]) {
    const file = fileURLToPath(new URL(name, import.meta.url));
    if (fs.existsSync(file)) return (found = file);
  }
  return undefined;
}

export interface WrittenImage {
  /** The temporary file beside the DB holding the image (fsynced). */
  tmp: string;
  size: number;
  /** Journal records the worker replayed for this request (the rest it had applied before). */
  replayed: number;
  /** How often the worker built its copy from the files since its last image (ideally once, ever). */
  loads: number;
}

/**
 * The worker's JavaScript heap is small (the records of one request, a few MB; the copy is in
 * WebAssembly memory), but V8 lets a young generation grow to 48 MB under a steady stream of
 * requests, and keeps it: measured during a write burst at 100k invites, the worker's heap took
 * 39 MB for ~5 MB in use; with this limit, 15 MB. The price: more frequent, shorter scavenges.
 */
export const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4 };

type Pending = { resolve(img: WrittenImage): void; reject(err: Error): void };

/**
 * A worker with nothing to do for this long ends, and its copies of the stores with it: they are
 * a second full copy of every database (the server's RSS at 100k invites: ~340 MB with it, ~190 MB
 * without). While writes go on, each commit's `follow` keeps it alive; the next compaction after
 * an idle spell starts a new one, which loads its copy from the files.
 */
export const WORKER_IDLE_MS = 20_000;

export class SnapshotWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private ended = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly idleMs = WORKER_IDLE_MS) {}

  /** Whether a thread is running now (tests). */
  running(): boolean {
    return this.worker !== undefined;
  }

  /** The running thread's JavaScript engine limits (tests, diagnostics); undefined when none runs. */
  limits(): { maxYoungGenerationSizeMb?: number; maxOldGenerationSizeMb?: number } | undefined {
    return this.worker?.resourceLimits;
  }

  available(): boolean {
    return !this.ended && workerFile() !== undefined;
  }

  /**
   * Lets the worker bring its copy forward to `to` now, so that the next image needs only the
   * records after that. A hint: no reply, failures are found by the next image request.
   *
   * A hint starts a thread only when `start` is set: a new thread loads a full copy of the store
   * (its size again in memory, ~70 MB of RSS at 100k invites), worth it only when a compaction is
   * near (the caller decides: compaction.ts, past half the threshold).
   */
  follow(at: FilesAt, start = false): void {
    if (!this.worker && !start) return;
    try {
      this.send({ ...at, kind: "follow" });
    } catch {
      /* no worker: the image request will say so */
    }
  }

  /** The store is closed: the worker (if running) drops its copy of it. */
  forget(dbFile: string): void {
    this.worker?.postMessage({ kind: "forget", dbFile } satisfies WorkerRequest);
  }

  /** The image of DB file + journal up to `to`, written by the worker to a temporary file. */
  image(req: Omit<ImageRequest, "id" | "kind">): Promise<WrittenImage> {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      try {
        this.send({ ...req, kind: "image", id });
      } catch (err) {
        this.pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      // Referenced while a request is out: a process waiting only for its compaction stays alive.
      this.worker!.ref();
    });
  }

  /**
   * Ends the thread now if it has no request out (a later request starts a new one). For when its
   * copies are known to be useless: a foreground compaction of an idle store replaced the files
   * they follow, so they would be loaded again anyway; meanwhile they cost the store's size.
   */
  endIfIdle(): void {
    const w = this.worker;
    if (!w || this.pending.size > 0) return;
    clearTimeout(this.idleTimer);
    this.worker = undefined; // its exit is not a failure
    void w.terminate();
  }

  /** Ends the thread (its copies go with it); outstanding requests fail. */
  async end(): Promise<void> {
    this.ended = true;
    clearTimeout(this.idleTimer);
    const w = this.worker;
    this.failAll(new Error("snapshot worker ended"));
    await w?.terminate();
  }

  private send(req: WorkerRequest): void {
    if (this.ended) throw new Error("snapshot worker ended");
    this.worker ??= this.start();
    this.worker.postMessage(req);
    this.armIdle();
  }

  /** (Re)starts the idle countdown; it ends the thread only with no request out. */
  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const w = this.worker;
      if (!w || this.pending.size > 0) return;
      this.worker = undefined; // its exit is not a failure
      void w.terminate();
    }, this.idleMs);
    this.idleTimer.unref();
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.worker = undefined;
  }

  private start(): Worker {
    const file = workerFile();
    if (!file) throw new Error("snapshot worker not found");
    // From src/ (tests run TypeScript through tsx): the worker registers tsx's loader first.
    const w = file.endsWith(".ts")
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(file).href)}); });`,
          { eval: true, resourceLimits: WORKER_LIMITS },
        )
      : new Worker(file, { resourceLimits: WORKER_LIMITS });
    w.unref();
    w.on("message", (m: ImageReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if ("tmp" in m) p.resolve({ tmp: m.tmp, size: m.size, replayed: m.replayed, loads: m.loads });
      else p.reject(new Error(m.error));
      if (this.pending.size === 0) {
        w.unref();
        this.armIdle();
      }
    });
    w.on("error", (err) => this.failAll(err instanceof Error ? err : new Error(String(err))));
    w.on("exit", (code) => {
      if (this.worker === w) this.failAll(new Error(`snapshot worker exited (${code})`));
    });
    return w;
  }
}
