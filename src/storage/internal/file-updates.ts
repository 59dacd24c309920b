/**
 * Read-modify-write of one data file under its lock, for the internal driver's map stores. Changes
 * to the same file that arrive while an earlier one waits for the lock or runs are applied together,
 * in order, in one write (each caller still resolves only once its change is on disk): the lock
 * round trip and the rewrite of a big file are paid once per batch, not once per change.
 */
import type { StoreRecord, StoreValue } from "../types.js";
import { applyMapChanges, checkMapChangesOnSequence } from "../values.js";
import { copyData, type DataFiles } from "./data-files.js";
import type { KeyChange } from "./splice.js";

export type { KeyChange };

/** Runs `fn` holding `file`'s lock. */
export type WithLock = <T>(file: string, fn: () => Promise<T>) => Promise<T>;

/**
 * Group commit under concurrent writers. Writers that wait for a batch's write (HTTP clients
 * waiting for their response) mostly write again right after it: their next changes arrive one by
 * one over a few milliseconds (responses sent, requests parsed). The first of them starts the next
 * batch; if that batch ran at once, it would hold only that change, and the others would wait a whole
 * write for the one after: batches alternate between one change and all the others (measured at
 * 16 connections on a 100k-invite file: 15, 1, 15, 1 … at ~30 ms a write, ~250 changes/s instead of
 * ~400). So a batch, once it holds the lock, waits until as many writers have joined it as were
 * waiting for its file when the previous batch ended (its own writers and those queued behind it),
 * but no longer than that batch's write took (at least GATHER_MIN_MS, at most GATHER_MAX_MS): writers
 * that do not come back cost one such wait, after which the count is theirs. A lone writer never waits.
 */
const GATHER_MIN_MS = 2;
const GATHER_MAX_MS = 50;
/** Files whose last batch had company are remembered, up to this many. */
const MAX_REMEMBERED = 256;

interface Batch {
  changes: KeyChange[];
  /** modify() calls that joined it. */
  writers: number;
  done?: Promise<void>;
  /** Wakes a gathering batch when a writer joins. */
  joined?: () => void;
}

/** What the last batch of a file saw: writers waiting for the file when it ended, how long it wrote. */
interface LastBatch {
  writers: number;
  ms: number;
}

const has = (rec: StoreRecord, key: string) => Object.prototype.hasOwnProperty.call(rec, key);

export class FileUpdates {
  /** Changes waiting for their file's lock, by file. */
  private readonly pending = new Map<string, Batch>();
  /** Batches written, and those whose gathering ended by its time limit rather than its count. */
  readonly stats = { batches: 0, waitedOut: 0 };
  /** Writers whose change is not yet on disk, by file (entries go with their last writer). */
  private readonly waiting = new Map<string, number>();
  /** Files whose last batch ended with more than one writer waiting (bounded: MAX_REMEMBERED). */
  private readonly lastBatch = new Map<string, LastBatch>();

  constructor(
    private readonly files: DataFiles,
    private readonly withLock: WithLock,
  ) {}

  /** Applies `changes` to the record in `file`; resolves once they are on disk. */
  modify(file: string, changes: KeyChange[]): Promise<void> {
    let batch = this.pending.get(file);
    if (!batch) {
      const b: Batch = { changes: [], writers: 0 };
      batch = b;
      this.pending.set(file, b);
      // Closed to new changes once it starts writing, or once it has failed without starting (the
      // lock could not be taken): a dead batch must never swallow later changes.
      const close = () => {
        if (this.pending.get(file) === b) this.pending.delete(file);
      };
      b.done = this.withLock(file, async () => {
        const last = this.lastBatch.get(file);
        if (last && b.writers < last.writers) await this.gather(b, last.writers, Math.min(GATHER_MAX_MS, Math.max(GATHER_MIN_MS, last.ms)));
        close();
        this.stats.batches++;
        const started = performance.now();
        try {
          return await this.apply(file, b.changes);
        } finally {
          // This batch's writers have not been counted out yet: they, and those queued behind.
          const writers = this.waiting.get(file) ?? 0;
          if (writers > 1) {
            if (this.lastBatch.size >= MAX_REMEMBERED && !this.lastBatch.has(file)) this.lastBatch.clear();
            this.lastBatch.set(file, { writers, ms: performance.now() - started });
          } else this.lastBatch.delete(file);
        }
      });
      b.done.then(close, close);
    }
    batch.changes.push(...changes);
    batch.writers++;
    this.waiting.set(file, (this.waiting.get(file) ?? 0) + 1);
    const out = batch.done!;
    const left = () => {
      const n = (this.waiting.get(file) ?? 1) - 1;
      if (n > 0) this.waiting.set(file, n);
      else this.waiting.delete(file);
    };
    out.then(left, left);
    batch.joined?.();
    return out;
  }

  /** Resolves once `writers` writers have joined `b`, or after `ms`. */
  private gather(b: Batch, writers: number, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.stats.waitedOut++;
        done();
      }, ms);
      function done() {
        clearTimeout(timer);
        delete b.joined;
        resolve();
      }
      b.joined = () => {
        if (b.writers >= writers) done();
      };
    });
  }

  /** Removes `key` and returns what it held, in one locked read-modify-write (see MapStore.take). */
  take(file: string, key: string): Promise<StoreValue | undefined> {
    // Changes made after this call must not join a batch queued before it (that batch runs
    // first, so they would be applied before the take): close it; later changes start a new one.
    this.pending.delete(file);
    return this.withLock(file, async () => {
      const { rec: current, shared, entry } = await this.files.readShared(file);
      if (!current || Array.isArray(current) || !has(current, key)) return undefined;
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
    // The file holds a sequence: only removals (no-ops) can apply; adding a key is refused (for
    // every change of this batch: they all add to the same sequence, or remove nothing).
    if (Array.isArray(current)) {
      checkMapChangesOnSequence(changes, file);
      return;
    }
    if (entry && (await this.files.writeChanges(file, entry, changes)) !== "full") return;
    const rec: StoreRecord = { ...current }; // shallow: values are replaced, never changed
    if (!applyMapChanges(rec, changes)) return;
    for (const _ in rec) return this.files.write(file, rec);
    return this.files.write(file, undefined);
  }
}
