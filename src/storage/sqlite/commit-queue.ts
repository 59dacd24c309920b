/**
 * The commit queue: writes queued by execute()/transaction()/compact() are committed in groups,
 * one journal record per commit, each promise resolving once its record is fsynced. How commits
 * are pipelined and why the lock is handed over before the sync: DESIGN.md, "Write path".
 */
import fs from "node:fs";
import { StorageError } from "../types.js";
import { applyGuarded, applyPlain, type BatchTarget, type Done, type Pending, type Settle } from "./batch.js";
import type { Compaction } from "./compaction.js";
import type { Follower } from "./follower.js";
import { fdatasync, writeAllSync } from "./fsutil.js";
import { RecordEncoder, type SqlStatement } from "./journal.js";
import type { WriterLock } from "./writer-lock.js";

/** At most this many commits' fdatasyncs overlap; beyond, writes gather into the next commit. */
const MAX_SYNCS_IN_FLIGHT = 2;

export type AppendHook = "append:before-write" | "append:after-write" | "append:before-commit" | "append:after-sync";

export interface CommitQueueDeps {
  file: string;
  journalFile: string;
  follower: Follower;
  lock: WriterLock;
  compaction: Compaction;
  /** The working copy, for the batch (errors name the file). */
  target: BatchTarget;
  stats: { groups: number; records: number; journalBytesAppended: number; fsyncs: number; guardedCommits: number };
  hook(point: AppendHook): void;
}

type CompactRequest = Extract<Pending, { kind: "compact" }>;

/** The fdatasync of a commit's record, started right after the append. */
interface Syncing {
  fd: number;
  /** Where the record starts (to take it back if the commit fails before COMMIT). */
  at: number;
  done: Promise<void>;
}

/** A commit applied and appended under the lock, waiting for its sync. */
interface Commit {
  done: Done[];
  syncing: Syncing | null;
}

const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class CommitQueue {
  private readonly queue: Pending[] = [];
  private readonly encoder = new RecordEncoder();
  /** A commit (lock wait, apply, append) or compaction is running: the next one waits. */
  private busy = false;
  /** A commit is scheduled for after the current I/O phase. */
  private scheduled = false;
  /** Commits whose fdatasync has not completed yet. */
  private syncsInFlight = 0;
  private drainWaiters: (() => void)[] = [];

  constructor(private readonly d: CommitQueueDeps) {}

  push(p: Pending): void {
    this.queue.push(p);
    this.kick();
  }

  /** Something changed outside the queue (a background image is ready or gone): look again. */
  wake(): void {
    this.kick();
    this.settleDrain();
  }

  /** Nothing queued, committing, syncing or compacting in the background. */
  get quiet(): boolean {
    return this.idle();
  }

  /** Resolves once nothing is queued, committing, syncing or compacting in the background. */
  drain(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Schedules a commit of whatever is queued. Commits are pipelined: the next one may apply and
   * append while the previous one's fdatasync is still running (each waits for its own sync), so
   * a writer never waits for a sync that started before its write was queued. A commit starts
   * after the current I/O phase, so every request read in this turn of the event loop has queued
   * its writes by then and they share one commit.
   */
  private kick(): void {
    if (this.busy || this.scheduled) return;
    const install = this.d.compaction.imageReady;
    if (!install && (this.queue.length === 0 || this.syncsInFlight >= MAX_SYNCS_IN_FLIGHT)) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.runFlush();
    });
  }

  private async runFlush(): Promise<void> {
    const compaction = this.d.compaction;
    if (this.busy || (this.queue.length === 0 && !compaction.imageReady)) return this.settleDrain();
    this.busy = true;
    try {
      if (compaction.imageReady) await compaction.installBackground();
      if (this.queue.length) await this.flushOnce();
    } finally {
      this.busy = false;
      this.kick();
      this.settleDrain();
    }
  }

  private idle(): boolean {
    return !this.busy && !this.scheduled && this.syncsInFlight === 0 && this.queue.length === 0 && !this.d.compaction.running;
  }

  private settleDrain(): void {
    if (!this.idle() || this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * One group commit. Never throws: failures reject the affected promises.
   *
   * The lock covers catch-up, apply, the journal write() and the in-memory COMMIT, but not the
   * fdatasync: the next holder (maybe another process) reads our complete record from the page
   * cache and appends after it, and its own fdatasync flushes ours too. A promise still resolves
   * only after an fdatasync of the journal issued after its record was written.
   */
  private async flushOnce(): Promise<void> {
    let kept: boolean;
    try {
      kept = await this.d.lock.take();
    } catch (err) {
      for (const p of this.queue.splice(0)) p.reject(err);
      return;
    }
    // Take the batch as late as possible: everything queued while we waited joins this commit.
    const batch = this.queue.splice(0);
    const commit = this.commit(batch, kept);
    if (!commit) return;
    const compacts = batch.filter((p): p is CompactRequest => p.kind === "compact");
    if (compacts.length === 0) {
      // Grown past the threshold: compact in the background (the lock is not needed for that).
      this.d.compaction.afterCommit();
      this.d.lock.done(true);
    }
    const durable = this.settleWhenSynced(commit);
    if (compacts.length) {
      // Asked for (compact(), close): now, under the lock, once this commit is durable.
      await durable;
      await this.compactNow(compacts);
    }
  }

  /** Under the lock: catch up, apply the batch, append its record, COMMIT. null: it failed (all rejected). */
  private commit(batch: Pending[], kept: boolean): Commit | null {
    const { follower: f, target: t } = this.d;
    const c: Commit = { done: [], syncing: null };
    let inTx = false;
    try {
      if (!kept || !f.readyToAppend) f.syncUnderLock();
      t.run("BEGIN");
      inTx = true;
      let applied = applyPlain(t, batch, c.done);
      if (applied === null) {
        // A group failed: start the transaction again, every group in a savepoint of its own.
        try {
          t.run("ROLLBACK");
        } catch {
          /* some errors end the transaction themselves; if it is still open, BEGIN says so */
        }
        inTx = false;
        c.done.length = 0;
        t.run("BEGIN");
        inTx = true;
        this.d.stats.guardedCommits++;
        applied = applyGuarded(t, batch, c.done);
      }
      if (applied.length) {
        c.syncing = this.append(applied);
        this.d.hook("append:before-commit");
      }
      t.run("COMMIT");
      return c;
    } catch (err) {
      this.abandon(batch, err, inTx, c.syncing);
      return null;
    }
  }

  /** Appends one record and starts its fdatasync (which runs while the COMMIT is still busy here). */
  private append(applied: SqlStatement[]): Syncing {
    const f = this.d.follower;
    const rec = this.encoder.encode(applied);
    const at = f.offset;
    const fd = f.jfd!;
    try {
      this.d.hook("append:before-write");
      // Synchronous on purpose: a page-cache copy of a few KB; an async write would keep the
      // lock held across a threadpool round trip.
      writeAllSync(fd, rec, at);
      this.d.hook("append:after-write");
    } catch (err) {
      try {
        fs.ftruncateSync(fd, at);
      } catch {
        /* the torn tail will be cut by the next writer */
      }
      throw new StorageError(`${this.d.journalFile}: cannot write the journal: ${errMsg(err)}`);
    }
    f.appended(at + rec.length);
    this.d.stats.records++;
    this.d.stats.journalBytesAppended += rec.length;
    this.encoder.trim();
    f.pin(fd);
    this.syncsInFlight++;
    return { fd, at, done: fdatasync(fd) };
  }

  /** A commit failed under the lock: undo it in memory and on disk, reject the batch, let go of the lock. */
  private abandon(batch: Pending[], err: unknown, inTx: boolean, syncing: Syncing | null): void {
    const f = this.d.follower;
    if (inTx) {
      try {
        this.d.target.run("ROLLBACK");
      } catch {
        f.invalidate(); // state unknown: reload before the next use
      }
    }
    const e = err instanceof StorageError ? err : new StorageError(`${this.d.file}: ${errMsg(err)}`);
    // Settled promises ignore this; groups not yet reached by the loop get it.
    for (const p of batch) p.reject(e);
    if (syncing) {
      // Appended but not committed: take the record back (we still hold the lock, so nobody
      // has read it), or a reload would bring back a write whose promise was rejected.
      try {
        fs.ftruncateSync(syncing.fd, syncing.at);
        f.appended(syncing.at);
      } catch {
        f.invalidate(); // cannot tell what the journal holds: reload before the next use
      }
      void this.syncEnded(syncing.fd, syncing.done.catch(() => {}));
    }
    this.d.lock.done(false);
  }

  /** Settles the commit's groups once its record is fsynced; resolves then. */
  private settleWhenSynced(c: Commit): Promise<void> {
    const settle = (err?: StorageError) => {
      this.d.stats.groups += c.done.length;
      for (const [p, v] of c.done) {
        if (err) p.reject(err);
        else p.resolve(v);
      }
    };
    if (c.syncing === null) {
      settle();
      return Promise.resolve();
    }
    const synced = c.syncing.done.then(
      () => {
        this.d.stats.fsyncs++;
        this.d.hook("append:after-sync");
        settle();
      },
      (err: unknown) => {
        // The record is in the journal (others may have built on it): it cannot be taken back.
        settle(new StorageError(`${this.d.journalFile}: fdatasync failed, the write may not be durable: ${errMsg(err)}`));
      },
    );
    void this.syncEnded(c.syncing.fd, synced);
    return synced;
  }

  /** compact() / a compacting close, right after the commit that carried the request. */
  private async compactNow(compacts: (Settle & { removeJournal: boolean })[]): Promise<void> {
    let kept = false;
    try {
      const removeJournal = compacts.some((c) => c.removeJournal) && this.queue.length === 0;
      await this.d.compaction.compactLocked(removeJournal);
      kept = !removeJournal;
      for (const c of compacts) c.resolve(undefined);
    } catch (err) {
      const e = err instanceof StorageError ? err : new StorageError(`${this.d.file}: compaction failed: ${errMsg(err)}`);
      this.d.compaction.lastError = e;
      for (const c of compacts) c.reject(e);
    } finally {
      this.d.lock.done(kept);
    }
  }

  /** Bookkeeping once a commit's fdatasync (and its settling) is over; the next commit may start. */
  private async syncEnded(fd: number, settled: Promise<void>): Promise<void> {
    try {
      await settled;
    } finally {
      this.d.follower.unpin(fd);
      this.syncsInFlight--;
      this.kick();
      this.settleDrain();
    }
  }
}
