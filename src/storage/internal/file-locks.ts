/**
 * Per-file exclusion for the internal driver: operations on one data file run one at a time, first
 * queued behind the earlier operations of this owner (a runtime's providers share one FileLocks),
 * then holding the file's cross-process lock (../sqlite/lock.ts), which also keeps apart two owners
 * in one process: two ProcessLock instances exclude each other just as two processes do.
 */
import path from "node:path";
import { ProcessLock } from "../sqlite/lock.js";

interface FileLock {
  /** Tail of this owner's queue of operations on the file. */
  tail: Promise<unknown>;
  lock: ProcessLock;
  busy: number;
}

/** Idle entries are dropped once this many files have been locked. */
const MAX_IDLE_ENTRIES = 1024;

export class FileLocks {
  /** By the absolute path of the file (under the real data directory). */
  private readonly locks = new Map<string, FileLock>();

  /**
   * Runs `fn` while holding `file`'s lock. The lock is keyed by the file's path inside `dataPath`
   * (the real data directory), the same in every process whatever spelling of the data path it
   * was given.
   */
  exclusive<T>(dataPath: string, file: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    let entry = this.locks.get(file);
    if (!entry) {
      if (this.locks.size >= MAX_IDLE_ENTRIES) {
        for (const [k, e] of this.locks) if (e.busy === 0) this.locks.delete(k);
      }
      const lock = new ProcessLock(dataPath, "internal:" + path.relative(dataPath, file), file, timeoutMs);
      entry = { tail: Promise.resolve(), lock, busy: 0 };
      this.locks.set(file, entry);
    }
    const e = entry;
    e.busy++;
    const run = async () => {
      await e.lock.acquire();
      try {
        return await fn();
      } finally {
        e.lock.release();
      }
    };
    const result = e.tail.then(run, run);
    e.tail = result.then(
      () => {
        e.busy--;
      },
      () => {
        e.busy--;
      },
    );
    return result;
  }
}
