/**
 * The main thread's side of snapshot-worker.ts: one worker per process, started on first use,
 * never keeping the process alive. `available()` is false where the worker file cannot be found
 * (then callers take the snapshot in their own thread, as before).
 */
import fs from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { SnapshotReply, SnapshotRequest } from "./snapshot-worker.js";

/** The built worker beside this module's bundle, or the TypeScript source when run from src/. */
function workerFile(): string | undefined {
  for (const name of ["./snapshot-worker.js", "./snapshot-worker.ts"]) {
    const file = fileURLToPath(new URL(name, import.meta.url));
    if (fs.existsSync(file)) return file;
  }
  return undefined;
}

let worker: Worker | undefined;
let nextId = 1;
const pending = new Map<number, { resolve(img: Uint8Array): void; reject(err: Error): void }>();

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
  w.on("message", (m: SnapshotReply) => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    if ("image" in m) p.resolve(m.image);
    else p.reject(new Error(m.error));
    if (pending.size === 0) w.unref();
  });
  w.on("error", (err) => failAll(err instanceof Error ? err : new Error(String(err))));
  w.on("exit", (code) => {
    if (worker === w) failAll(new Error(`snapshot worker exited (${code})`));
  });
  return w;
}

let found: boolean | undefined;

export const snapshots = {
  available(): boolean {
    return (found ??= workerFile() !== undefined);
  },

  /** The image of db file + journal up to `to`, built in the worker. */
  take(req: Omit<SnapshotRequest, "id">): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      try {
        worker ??= start();
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const id = nextId++;
      pending.set(id, { resolve, reject });
      // Referenced while a request is out: a process waiting only for its compaction stays alive.
      worker.ref();
      worker.postMessage({ ...req, id } satisfies SnapshotRequest);
    });
  },
};
