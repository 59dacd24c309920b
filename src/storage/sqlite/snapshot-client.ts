/**
 * The main thread's side of snapshot-worker.ts: one worker per process, started on first use,
 * never keeping the process alive while it has nothing to answer. `available()` is false where the
 * worker file cannot be found (then callers build and write images in their own thread, as before).
 */
import fs from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { FilesAt, ImageReply, ImageRequest, WorkerRequest } from "./snapshot-worker.js";

/** The built worker beside this module's bundle, or the TypeScript source when run from src/. */
function workerFile(): string | undefined {
  for (const name of ["./snapshot-worker.js", "./snapshot-worker.ts"]) {
    const file = fileURLToPath(new URL(name, import.meta.url));
    if (fs.existsSync(file)) return file;
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

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, { resolve(img: WrittenImage): void; reject(err: Error): void }>();

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  worker = undefined;
}

function start(): Worker {
  const file = workerFile();
  if (!file) throw new Error("snapshot worker not found");
  // From src/ (tests run TypeScript through tsx): the worker registers tsx's loader first.
  const w = file.endsWith(".ts")
    ? new Worker(
        `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(file).href)}); });`,
        { eval: true },
      )
    : new Worker(file);
  w.unref();
  w.on("message", (m: ImageReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if ("tmp" in m) p.resolve({ tmp: m.tmp, size: m.size, replayed: m.replayed, loads: m.loads });
    else p.reject(new Error(m.error));
    if (pending.size === 0) w.unref();
  });
  w.on("error", (err) => failAll(err instanceof Error ? err : new Error(String(err))));
  w.on("exit", (code) => {
    if (worker === w) failAll(new Error(`snapshot worker exited (${code})`));
  });
  return w;
}

function send(req: WorkerRequest): void {
  worker ??= start();
  worker.postMessage(req);
}

let found: boolean | undefined;

export const snapshots = {
  available(): boolean {
    return (found ??= workerFile() !== undefined);
  },

  /**
   * Lets the worker bring its copy forward to `to` now, so that the next image needs only the
   * records after that. A hint: no reply, failures are found by the next image request.
   */
  follow(at: FilesAt): void {
    try {
      send({ ...at, kind: "follow" });
    } catch {
      /* no worker: the image request will say so */
    }
  },

  /** The store is closed: the worker (if running) drops its copy of it. */
  forget(dbFile: string): void {
    worker?.postMessage({ kind: "forget", dbFile } satisfies WorkerRequest);
  },

  /** The image of DB file + journal up to `to`, written by the worker to a temporary file. */
  image(req: Omit<ImageRequest, "id" | "kind">): Promise<WrittenImage> {
    return new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      try {
        send({ ...req, kind: "image", id });
      } catch (err) {
        pending.delete(id);
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      // Referenced while a request is out: a process waiting only for its compaction stays alive.
      worker!.ref();
    });
  },
};
