/**
 * Read-modify-write of one data file under its lock, for the internal driver's map stores. Changes
 * to the same file that arrive while an earlier one waits for the lock or runs are applied together,
 * in order, in one write (each caller still resolves only once its change is on disk): the lock
 * round trip and the rewrite of a big file are paid once per batch, not once per change.
 */
import type { StoreRecord, StoreValue } from "../types.js";
import { applyMapChanges } from "../values.js";
import { copyData, type DataFiles } from "./data-files.js";
import type { KeyChange } from "./splice.js";

export type { KeyChange };

/** Runs `fn` holding `file`'s lock. */
export type WithLock = <T>(file: string, fn: () => Promise<T>) => Promise<T>;

/**
 * How long a batch waits, once it holds the lock, for changes arriving in the same burst, when the
 * previous batch of its file had company (concurrent writers): without it, the first change after
 * a batch ends starts a batch of its own, and batches alternate between one change and all the
 * others (measured: 15, 1, 15, 1 … at 16 connections). A lone writer never waits.
 */
const GATHER_MS = 2;

interface Batch {
  changes: KeyChange[];
  done?: Promise<void>;
}

const has = (rec: StoreRecord, key: string) => Object.prototype.hasOwnProperty.call(rec, key);

export class FileUpdates {
  /** Changes waiting for their file's lock, by file. */
  private readonly pending = new Map<string, Batch>();
  /** Files whose last batch held more than one change (bounded: see modify). */
  private readonly busyFiles = new Set<string>();

  constructor(
    private readonly files: DataFiles,
    private readonly withLock: WithLock,
  ) {}

  /** Applies `changes` to the record in `file`; resolves once they are on disk. */
  modify(file: string, changes: KeyChange[]): Promise<void> {
    let batch = this.pending.get(file);
    if (!batch) {
      const b: Batch = { changes: [] };
      batch = b;
      this.pending.set(file, b);
      // Closed to new changes once it starts, or once it has failed without starting (the
      // lock could not be taken): a dead batch must never swallow later changes.
      const close = () => {
        if (this.pending.get(file) === b) this.pending.delete(file);
      };
      b.done = this.withLock(file, async () => {
        if (this.busyFiles.has(file)) await new Promise((r) => setTimeout(r, GATHER_MS));
        close();
        if (b.changes.length > 1) {
          if (this.busyFiles.size >= 256) this.busyFiles.clear();
          this.busyFiles.add(file);
        } else this.busyFiles.delete(file);
        return this.apply(file, b.changes);
      });
      b.done.then(close, close);
    }
    batch.changes.push(...changes);
    return batch.done!;
  }

  /** Removes `key` and returns what it held, in one locked read-modify-write (see MapStore.take). */
  take(file: string, key: string): Promise<StoreValue | undefined> {
    // Changes made after this call must not join a batch queued before it (that batch runs
    // first, so they would be applied before the take): close it; later changes start a new one.
    this.pending.delete(file);
    return this.withLock(file, async () => {
      const { rec: current, shared, entry } = await this.files.readShared(file);
      if (!current || !has(current, key)) return undefined;
      const value = shared ? copyData(current[key]!) : current[key]!;
      if (entry && (await this.files.writeChanges(file, entry, [[key, undefined]])) !== "full") return value;
      const rec: StoreRecord = { ...current };
      delete rec[key];
      let empty = true;
      for (const _ in rec) empty = false;
      await this.files.write(file, empty ? undefined : rec);
      return value;
    });
  }

  /** One batch, under the lock: the record as it is now, changed, written if anything changed. */
  private async apply(file: string, changes: KeyChange[]): Promise<void> {
    const { rec: current, entry } = await this.files.readShared(file);
    if (entry && (await this.files.writeChanges(file, entry, changes)) !== "full") return;
    const rec: StoreRecord = { ...current }; // shallow: values are replaced, never changed
    if (!applyMapChanges(rec, changes)) return;
    for (const _ in rec) return this.files.write(file, rec);
    return this.files.write(file, undefined);
  }
}
