/**
 * Durable, multi-process SQLite on top of sql.js: the facade the SQL driver, recovery and tests use.
 *
 * sql.js keeps the whole database in (WebAssembly) memory and cannot write a file itself; this
 * class makes it behave like a shared on-disk database for several of our processes (the server,
 * prosodyctl) with a change journal beside the DB file. The design (files, write and read paths,
 * compaction, what is and is not safe) is in DESIGN.md; the parts are:
 * - follower.ts: the working copy kept equal to the files (working-copy.ts: image + replay);
 * - commit-queue.ts: group commits, one journal record each (batch.ts: what a commit applies);
 * - compaction.ts: folding the journal into a new DB file, in the foreground or background;
 * - writer-lock.ts: how the cross-process lock (lock.ts) is taken, kept and handed over.
 */
import fs from "node:fs";
import path from "node:path";
import { StorageError } from "../types.js";
import { checkStatements, type BatchTarget, type DurableTx, type SqlRow } from "./batch.js";
import { CommitQueue, type AppendHook } from "./commit-queue.js";
import { Compaction, type CompactionHook } from "./compaction.js";
import { Follower } from "./follower.js";
import { DIR_MODE, readAtSync } from "./fsutil.js";
import { HEADER_SIZE as JOURNAL_HEADER_SIZE, type SqlParam, type SqlStatement } from "./journal.js";
import { ProcessLock } from "./lock.js";
import { SnapshotWorker } from "./snapshot-client.js";
import { loadSqlJs, type LoadedSqlJs } from "./sqljs.js";
import type { TornTailLog } from "./torn-tail.js";
import { WriterLock } from "./writer-lock.js";

export type { SqlParam, SqlStatement } from "./journal.js";
export type { DurableTx, SqlRow } from "./batch.js";

export const JOURNAL_SUFFIX = ".sqljs-journal";
const SQLITE_JOURNAL_MAGIC = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);

/** Named moments of the write path, for crash tests (`hooks.at` may e.g. kill the process). */
export type HookPoint = AppendHook | CompactionHook;

export interface DurableSqliteOptions {
  /** Compact when the journal exceeds max(compactMinBytes, DB file size). Default 8 MiB. */
  compactMinBytes?: number;
  /** Fixed compaction threshold in journal bytes, replacing the rule above (tests). */
  compactThresholdBytes?: number;
  /**
   * Build background compaction images in the compaction worker (default). false: export them on
   * this thread, as when the worker's file is missing (tests of that path).
   */
  compactInWorker?: boolean;
  /**
   * The compaction worker to use (shared by the stores of one owner). Without one, this database
   * starts its own when it first compacts in the background and ends it on close.
   */
  snapshots?: SnapshotWorker;
  /**
   * How the working copy holds the database: "memory" (default) copies the DB file's image into an
   * SQLite in-memory database, for long-lived processes that write a lot (the server); "in-place"
   * opens the image as a file in sql.js's MEMFS without that copy, for short-lived processes
   * (prosodyctl: ~0.3 s less to open a 100k-invite store, and no second copy in memory). Both
   * follow the same files the same way (DESIGN.md, "Working copy").
   */
  workingCopy?: "memory" | "in-place";
  /**
   * When this instance has not written for this long, a journal of at least `foldIdleMinBytes`
   * (header excluded) is folded into the DB file (a foreground compaction, under the lock): the
   * journal does not stay tens of MB long after a burst of writes (between two threshold
   * compactions), so a process opening the store later replays little. Default 2000 ms; 0: never.
   */
  foldIdleMs?: number;
  /** See foldIdleMs. Default 64 KiB. */
  foldIdleMinBytes?: number;
  /** How long a write waits for the cross-process lock before failing. Default 30 s. */
  lockTimeoutMs?: number;
  /** Told when a damaged or incomplete journal tail is cut (torn-tail.ts). */
  log?: TornTailLog;
  hooks?: { at?(point: HookPoint): void };
}

/** A consistent look at the database, valid only during the read() callback it is given to. */
export interface DurableView {
  /**
   * Moves whenever this copy has taken in changes it did not make itself (records appended by
   * other processes, a reload after someone else's compaction). A cache of reads stays valid while
   * this counter, and its owner's record of its own writes, are unchanged.
   */
  readonly foreignChanges: number;
  all(sql: string, params?: readonly SqlParam[]): SqlRow[];
  get(sql: string, params?: readonly SqlParam[]): SqlRow | undefined;
}

/** I/O counters (for tests and benchmarks). */
export interface DurableStats {
  /** Groups committed by this instance. */
  groups: number;
  /** Journal records (= flushes with at least one statement) appended by this instance. */
  records: number;
  journalBytesAppended: number;
  fsyncs: number;
  compactions: number;
  dbBytesWritten: number;
  /** Full reloads of DB file + journal. */
  reloads: number;
  /** Records of other processes applied by catch-up. */
  recordsReplayed: number;
  /** Background compaction images built by the snapshot worker (not by an export in this thread). */
  workerSnapshots: number;
  /**
   * How often the worker had to build its copy from the files rather than bring it forward (once at
   * the start; again only after another process compacted or a failure).
   */
  workerLoads: number;
  /** Commits applied with a savepoint per group (a group failed, or a transaction() was among them). */
  guardedCommits: number;
  /** Compactions started because writes went idle (foldIdleMs). */
  idleFolds: number;
}

const DEFAULT_FOLD_IDLE_MS = 2000;
const DEFAULT_FOLD_IDLE_MIN_BYTES = 64 * 1024;

const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class DurableSqlite {
  readonly file: string;
  readonly journalFile: string;
  readonly stats: DurableStats = {
    groups: 0,
    records: 0,
    journalBytesAppended: 0,
    fsyncs: 0,
    compactions: 0,
    dbBytesWritten: 0,
    reloads: 0,
    recordsReplayed: 0,
    workerSnapshots: 0,
    workerLoads: 0,
    guardedCommits: 0,
    idleFolds: 0,
  };

  private readonly lock: WriterLock;
  private readonly follower: Follower;
  private readonly compaction: Compaction;
  private readonly queue: CommitQueue;
  private readonly snapshots: SnapshotWorker;
  private readonly ownSnapshots: boolean;
  private closing: Promise<void> | null = null;
  private closed = false;
  /** Date.now() of this instance's last write request, and the timer that folds after it (foldIdleMs). */
  private lastWrite = 0;
  private foldTimer: NodeJS.Timeout | undefined;

  private constructor(loaded: LoadedSqlJs, file: string, realFile: string, private readonly opts: DurableSqliteOptions) {
    this.file = file;
    this.journalFile = file + JOURNAL_SUFFIX;
    const hook = (point: HookPoint) => opts.hooks?.at?.(point);
    const processLock = new ProcessLock(path.dirname(realFile), path.basename(realFile), file, opts.lockTimeoutMs ?? 30_000);
    this.lock = new WriterLock(processLock, () => this.closing !== null);
    this.ownSnapshots = opts.snapshots === undefined;
    this.snapshots = opts.snapshots ?? new SnapshotWorker();
    this.follower = new Follower({
      SQL: loaded.SQL,
      memory: loaded.memory,
      file,
      journalFile: this.journalFile,
      lock: this.lock,
      log: opts.log,
      beforeJournalRename: () => hook("compact:before-journal-rename"),
      stats: this.stats,
      inPlace: opts.workingCopy === "in-place",
    });
    this.compaction = new Compaction({
      file,
      follower: this.follower,
      lock: this.lock,
      snapshots: this.snapshots,
      opts,
      stats: this.stats,
      hook,
      wake: () => this.queue.wake(),
    });
    const target: BatchTarget = {
      file,
      run: (sql, params) => this.follower.db.run(sql, params),
      query: (sql, params, first) => this.query(sql, params, first),
    };
    this.queue = new CommitQueue({
      file,
      journalFile: this.journalFile,
      follower: this.follower,
      lock: this.lock,
      compaction: this.compaction,
      target,
      stats: this.stats,
      hook,
    });
  }

  /** Opens (creating if needed) the database `file`. Prefer one instance per file per owner. */
  static async open(file: string, opts: DurableSqliteOptions = {}): Promise<DurableSqlite> {
    // In place = a short-lived process: SQLite's code compiled once, quickly (see loadSqlJs).
    const loaded = await loadSqlJs({ tier: opts.workingCopy === "in-place" ? "baseline" : "optimizing" });
    const abs = path.resolve(file);
    let realFile: string;
    try {
      fs.mkdirSync(path.dirname(abs), { recursive: true, mode: DIR_MODE });
      realFile = path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
    } catch (err) {
      throw new StorageError(`${abs}: cannot create its directory: ${errMsg(err)}`);
    }
    const inst = new DurableSqlite(loaded, abs, realFile, opts);
    await inst.init();
    return inst;
  }

  /** Current generation (compaction count of the DB file). */
  get generation(): number {
    return this.follower.gen;
  }

  /** True once close() has finished (or open failed). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** True from the moment close() is called. */
  get isClosing(): boolean {
    return this.closing !== null || this.closed;
  }

  /** Bytes of the journal we have applied up to (header included). */
  get journalSize(): number {
    return this.follower.offset;
  }

  /** The last background compaction failure (the writes themselves had succeeded). */
  get lastCompactionError(): unknown {
    return this.compaction.lastError;
  }

  // --- writing ---------------------------------------------------------------------------------

  /** Queues one group of statements, applied atomically; resolves once durable. */
  execute(statements: readonly SqlStatement[]): Promise<void> {
    let copy: SqlStatement[];
    try {
      this.assertWritable();
      copy = checkStatements(statements, this.file);
    } catch (err) {
      return Promise.reject(err);
    }
    if (copy.length === 0) return Promise.resolve();
    this.wrote();
    return new Promise<void>((resolve, reject) => this.queue.push({ kind: "stmts", statements: copy, resolve: () => resolve(), reject }));
  }

  /**
   * Runs `fn` under the write lock, on the latest state of all processes, as one atomic group:
   * read-modify-write without lost updates. `fn` must be synchronous; if it throws, its changes are
   * rolled back and the promise rejects with that error. Resolves with fn's result once durable.
   */
  transaction<T>(fn: (tx: DurableTx) => T): Promise<T> {
    try {
      this.assertWritable();
    } catch (err) {
      return Promise.reject(err);
    }
    this.wrote();
    return new Promise<T>((resolve, reject) => this.queue.push({ kind: "fn", fn, resolve: resolve as (v: unknown) => void, reject }));
  }

  // --- folding when writes go idle (foldIdleMs) ----------------------------------------------------

  private wrote(): void {
    this.lastWrite = Date.now();
    const ms = this.opts.foldIdleMs ?? DEFAULT_FOLD_IDLE_MS;
    if (this.foldTimer === undefined && ms > 0) this.armFold(ms);
  }

  /** One timer per idle spell, not one per write: it looks at the last write when it fires. */
  private armFold(ms: number): void {
    this.foldTimer = setTimeout(() => this.foldIfIdle(), ms);
    this.foldTimer.unref(); // never what keeps a process alive
  }

  private foldIfIdle(): void {
    this.foldTimer = undefined;
    if (this.closing || this.closed) return;
    const ms = this.opts.foldIdleMs ?? DEFAULT_FOLD_IDLE_MS;
    const wait = this.lastWrite + ms - Date.now();
    if (wait > 0) return this.armFold(wait);
    if (!this.queue.quiet) return this.armFold(ms); // a commit or a background compaction is under way
    // Writes went idle: the compaction worker's copy (the store's size again) ends now rather than
    // 20 s later; the next compaction loads one from the files, as it must after a fold anyway.
    // Before the fold, not after: the fold's image (the store's size, built on this thread) and the
    // worker's copy then never take memory at the same time.
    this.snapshots.endIfIdle();
    const f = this.follower;
    if (f.journal.kind === "stale" || f.offset - JOURNAL_HEADER_SIZE < (this.opts.foldIdleMinBytes ?? DEFAULT_FOLD_IDLE_MIN_BYTES)) return;
    this.stats.idleFolds++;
    // A failure loses nothing (the records stay in the journal); it is kept like a background one's.
    this.enqueueCompact(false).catch((err: unknown) => {
      this.compaction.lastError = err;
    });
  }

  /** Folds the journal into the DB file now (normally automatic). */
  compact(): Promise<void> {
    try {
      this.assertWritable();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.enqueueCompact(false);
  }

  private enqueueCompact(removeJournal: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => this.queue.push({ kind: "compact", removeJournal, resolve: () => resolve(), reject }));
  }

  // --- reading ---------------------------------------------------------------------------------

  /**
   * Runs `fn` on the latest committed state of all processes: other processes' changes are taken
   * in first (one stat of the journal, unless we hold the lock), then every read through the view
   * sees that state, with no further check. The view must not be kept past `fn`. `arg` is passed
   * on to `fn` (so a hot path need not make a closure per call).
   */
  read<T>(fn: (view: DurableView) => T): T;
  read<T, A>(fn: (view: DurableView, arg: A) => T, arg: A): T;
  read<T, A>(fn: (view: DurableView, arg?: A) => T, arg?: A): T {
    this.assertOpen();
    this.follower.refresh();
    const view = new ReadView(this.reader, this.follower.foreign);
    try {
      return fn(view, arg);
    } finally {
      view.open = false;
    }
  }

  /** All rows of a query, on the latest committed state of all processes. */
  all(sql: string, params: readonly SqlParam[] = []): SqlRow[] {
    this.assertOpen();
    this.follower.refresh();
    return this.query(sql, params);
  }

  /** The first row of a query, or undefined. */
  get(sql: string, params: readonly SqlParam[] = []): SqlRow | undefined {
    this.assertOpen();
    this.follower.refresh();
    return this.query(sql, params, true)[0];
  }

  /** For read views: queries on the working copy, errors naming the file. */
  private readonly reader = (sql: string, params: readonly SqlParam[], first?: boolean) => this.query(sql, params, first);

  private query(sql: string, params: readonly SqlParam[], first = false): SqlRow[] {
    try {
      return this.follower.db.rows(sql, params, first);
    } catch (err) {
      throw new StorageError(`${this.file}: ${errMsg(err)} (in ${sql})`);
    }
  }

  // --- opening and closing ---------------------------------------------------------------------

  private async init(): Promise<void> {
    this.checkForeignJournals();
    await this.lock.take();
    try {
      // Nothing is changed on disk until the files are known to be usable (a refusal changes no file).
      this.follower.openUnderLock();
    } catch (err) {
      this.follower.close();
      this.closed = true;
      throw err instanceof StorageError ? err : new StorageError(`${this.file}: cannot open: ${errMsg(err)}`);
    } finally {
      this.lock.release();
    }
  }

  /** Refuse files that real SQLite left mid-transaction: their content is not what sql.js would read. */
  private checkForeignJournals(): void {
    const hot = this.file + "-journal";
    try {
      const fd = fs.openSync(hot, "r");
      try {
        if (readAtSync(fd, 0, 8).equals(SQLITE_JOURNAL_MAGIC)) {
          throw new StorageError(`${this.file}: SQLite's rollback journal ${hot} is hot (a SQLite writer crashed); open the database once with sqlite3 to recover it`);
        }
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      if (err instanceof StorageError) throw err;
    }
    const wal = fs.statSync(this.file + "-wal", { throwIfNoEntry: false });
    if (wal && wal.size > 0) {
      throw new StorageError(`${this.file}: ${this.file}-wal is not empty; checkpoint it first (sqlite3 ${this.file} 'PRAGMA wal_checkpoint(TRUNCATE)')`);
    }
  }

  /**
   * Flushes pending writes and releases everything. With `compact: true` the journal is folded into
   * the DB file and removed, leaving a plain SQLite file. Safe to call more than once.
   */
  close(opts: { compact?: boolean } = {}): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      let failure: unknown;
      try {
        if (opts.compact && !this.closed) await this.enqueueCompact(true);
        else await this.queue.drain();
      } catch (err) {
        failure = err;
      }
      await this.queue.drain();
      clearTimeout(this.foldTimer);
      this.closed = true;
      this.follower.close();
      if (this.ownSnapshots) await this.snapshots.end();
      else this.snapshots.forget(this.file); // the compaction worker's copy of this store, if it has one
      this.lock.close();
      if (failure) throw failure;
    })();
    return this.closing;
  }

  private assertOpen(): void {
    if (this.closed || !this.follower.loaded) throw new StorageError(`${this.file}: database is closed`);
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.closing) throw new StorageError(`${this.file}: database is closing`);
  }
}

/** A DurableView: valid until its read() callback returns. */
class ReadView implements DurableView {
  open = true;

  constructor(
    private readonly query: (sql: string, params: readonly SqlParam[], first?: boolean) => SqlRow[],
    readonly foreignChanges: number,
  ) {}

  all(sql: string, params: readonly SqlParam[] = []): SqlRow[] {
    this.check(sql);
    return this.query(sql, params);
  }

  get(sql: string, params: readonly SqlParam[] = []): SqlRow | undefined {
    this.check(sql);
    return this.query(sql, params, true)[0];
  }

  private check(sql: string): void {
    if (!this.open) throw new StorageError(`read view used after its callback returned (in ${sql})`);
  }
}
