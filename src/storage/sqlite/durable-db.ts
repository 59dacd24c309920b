/**
 * Durable, multi-process SQLite on top of sql.js.
 *
 * sql.js keeps the whole database in (WebAssembly) memory and cannot write a file itself. This class
 * makes it behave like a shared on-disk database for several Node processes (the server, the CLI):
 *
 * Files for database `X.sqlite`
 * - `X.sqlite`: a standard SQLite 3 file (what real Prosody / sqlite3 open). It is only ever replaced
 *   whole by compaction (write `X.sqlite.tmp-<rand>`, fsync, rename, fsync dir). Its
 *   `PRAGMA user_version` (header bytes 60..63) holds the *generation* it was compacted at, and its
 *   `PRAGMA application_id` (bytes 68..71) how much of the previous generation's journal a
 *   background compaction put in it (0 otherwise, and always 0 after the last process's close).
 * - `X.sqlite.sqljs-journal`: an append-only change journal (format in journal.ts): a header naming a
 *   generation, then one checksummed record per committed group of statements. It is replaced whole
 *   (tmp + fsync + rename) by compaction, and removed by `close({ compact: true })`.
 * - nothing else persistent (temporary `*.tmp-*` files of a crashed compaction are removed by the next
 *   lock holder). The writer lock is a unix socket in `.prosody-ts-locks/` beside the DB (lock.ts).
 *
 * Every image we write carries its own CRC32 in SQLite's change counter (db-image.ts SELF_CRC_AT).
 * Journal records are replayed only on such an image: a DB file changed by another program while
 * records wait is refused, as are a damaged record followed by intact ones (journal.ts) and a
 * missing DB file with records (integrity.ts); a refusal changes no file. A DB file we did not
 * write (Prosody's) is re-stamped, same bytes at the next generation, before a journal starts on it.
 *
 * State = DB file + the journal's complete records, *if* the journal's generation equals the DB's;
 * DB file + the journal's records after offset `application_id`, if the journal is exactly one
 * generation older and that offset is set (a background compaction between its two renames). Any
 * other older journal (a compaction died after renaming the DB, or the journal was removed by a
 * compacting close) is stale: the DB already contains all of it; the next writer replaces it.
 *
 * Write path: `execute()` / `transaction()` queue a group; after the current I/O phase one commit
 * takes everything queued (group commit): take the lock, catch up with records appended by other
 * processes, `BEGIN`, apply each queued group inside its own SAVEPOINT (a failing group is rolled
 * back and rejected alone), append ONE journal record with the statements of all successful groups
 * (a synchronous write()), `COMMIT`, `fdatasync`, resolve. If the append fails: `ROLLBACK`, truncate
 * the journal back, reject the batch. Commits are pipelined: the next one may apply and append while
 * the previous one's fdatasync runs (at most 2 syncs overlap); each resolves after its own sync.
 *   The lock is kept after a commit until another process asks for it (it connects to our socket,
 *   and we hand over as soon as no commit is using the lock). While we hold it nobody else can
 *   write, so the next commit skips the catch-up and reads skip their freshness check; a busy
 *   single writer pays for neither the lock nor the file checks.
 *   Deviation from "fdatasync, then COMMIT and release": the lock is handed over (when asked for)
 *   *before* the fdatasync. The next holder reads our complete record from the page cache and appends after it; whichever
 *   fdatasync comes first flushes both, so several processes' syncs overlap (cross-process group
 *   commit: ~1.8x the throughput with 4 writer processes). A promise still resolves only after an
 *   fdatasync issued after its record was written. The price: if that fdatasync fails, the record may
 *   already be built upon by others and cannot be truncated away; the promise then rejects with
 *   "may not be durable" (the write is visible and may or may not survive a power loss).
 * After a commit, compaction runs when the journal exceeds max(8 MiB, DB file size), so the cost of
 * a write is independent of the store size (amortised: each compaction rewrites the DB once for at
 * least as many journal bytes). It runs in the background: an image of the DB as of a commit is
 * built and written (paced) by the compaction worker (snapshot-worker.ts: its own copy, brought
 * forward from the journal; without the worker, the in-memory DB is exported on this thread, ~2 ms
 * per MB), marked as holding the journal up to that commit, and synced while commits go on; between
 * two commits it is renamed over the DB file, then the journal's later records move to a journal of
 * the new generation (see installBackgroundCompaction). `compact()` and a compacting close still compact
 * in the foreground, under the lock. The flip side: a process opening the store replays up to that many
 * journal bytes (measured ~25 µs per journaled write; ~1 s for a 27 MB journal on a 100k-row store).
 * `compactMinBytes` / `compactThresholdBytes` tune this.
 *
 * The working copy is an SQLite in-memory database (mem-db.ts) and runs with
 * `locking_mode=EXCLUSIVE`, `journal_mode=MEMORY`, `synchronous=OFF` (connection settings only:
 * nobody else opens it; this roughly halves the cost of a transaction). These are not written to
 * the DB file.
 *
 * Read path (`all`/`get`, synchronous): holding the lock → nothing to do; else stat the journal
 * path; same inode and size as last seen → nothing to do; grown → parse and apply the new complete
 * records; replaced/removed/shrunk → reload the DB file and the journal. Then run the query with a
 * cached prepared statement.
 *
 * What is safe
 * - Any number of processes using this class on the same file, concurrently, on one Linux host (the
 *   lock is a unix socket, reachable only by processes that may write the DB's directory).
 * - `kill -9` / crash of any process at any moment: a write whose promise resolved is on disk
 *   (fdatasync'd); an interrupted journal append is a torn tail, ignored and later truncated; an
 *   interrupted compaction leaves either the old DB + journal or the new DB + a stale journal; the
 *   writer lock dies with its holder.
 * - Power loss: every resolved write is on disk; records are only ever appended after complete,
 *   valid ones, so what survives is a prefix of the journal.
 * - Reading the file with sqlite3 / real Prosody while our processes run (they see the state of the
 *   last compaction: recent writes live in the journal until the next compaction).
 * - After `close({ compact: true })` of the last process, `X.sqlite` alone is the complete database.
 *
 * What is NOT safe
 * - A live real Prosody (or sqlite3) *writing* the same file while our processes run: sql.js cannot
 *   take SQLite's file locks, our next compaction overwrites their changes, and their writes are not
 *   seen by our processes until they reload. Stop one side, or give them different files.
 * - Writing the file with real SQLite while a non-empty journal exists (records would be replayed on
 *   top of those changes). Close our processes with `{ compact: true }` first.
 * - Statements must be deterministic (no `random()`, `datetime('now')`, …): each process replays the
 *   journal's statements on its own copy. Use parameters for anything computed.
 * - Network file systems (fsync/rename semantics, unix sockets are per host).
 * - Readers (in this and other processes) may observe a group while its fdatasync is still running
 *   (read-uncommitted with respect to durability, never to atomicity).
 * - `process.exit()` while a write's promise is pending loses that write (a pending write keeps the
 *   event loop alive otherwise); `await` writes or `close()` before exiting.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { SqlJsStatic, SqlValue } from "sql.js";
import { StorageError } from "../types.js";
import { BASE_OFFSET_AT, CONNECTION_PRAGMAS, GEN_AT, IMAGE_CHUNK, isOwnImage, stampImage } from "./db-image.js";
import {
  DIR_MODE,
  FILE_MODE,
  atomicWriteSync,
  fdatasync,
  fsyncDir,
  lookOf,
  randomSuffix,
  readAtSync,
  removeTempFiles,
  writeAllSync,
} from "./fsutil.js";
import {
  HEADER_SIZE,
  JournalDamagedError,
  decodeHeader,
  encodeHeader,
  RecordEncoder,
  parseRecords,
  type SqlParam,
  type SqlStatement,
} from "./journal.js";
import { MissingDatabaseError, refuseForeignRecords } from "./integrity.js";
import { ProcessLock } from "./lock.js";
import { MemoryDb } from "./mem-db.js";
import { reportTornTail, type TornTailLog } from "./torn-tail.js";
import { RawStatements } from "./raw-sqlite.js";
import { snapshots } from "./snapshot-client.js";
import type { FilesAt } from "./snapshot-worker.js";
import { loadSqlJs, type WasmMemory } from "./sqljs.js";

export type { SqlParam, SqlStatement } from "./journal.js";
export type SqlRow = Record<string, SqlValue>;

export const JOURNAL_SUFFIX = ".sqljs-journal";
const DEFAULT_COMPACT_MIN = 8 * 1024 * 1024;
const MAX_SYNCS_IN_FLIGHT = 2;
const CONTENDED_MS = 250;
/** After a failed background compaction (disk full, …), the next attempt waits this long. */
const COMPACT_RETRY_MS = 10_000;
const STATEMENT_CACHE_MAX = 256;
const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");
const SQLITE_JOURNAL_MAGIC = Buffer.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
const CONTROL_SQL = /^\s*(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE|VACUUM|ATTACH|DETACH)\b/i;

/** Named moments of the write path, for crash tests (`hooks.at` may e.g. kill the process). */
export type HookPoint =
  | "append:before-write"
  | "append:after-write"
  | "append:before-commit"
  | "append:after-sync"
  | "compact:before-image-write"
  | "compact:before-db-rename"
  | "compact:after-db-rename"
  | "compact:before-journal-rename"
  | "compact:after-journal-rename";

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
  /** How long a write waits for the cross-process lock before failing. Default 30 s. */
  lockTimeoutMs?: number;
  /** Told when a damaged or incomplete journal tail is cut (torn-tail.ts). */
  log?: TornTailLog;
  hooks?: { at?(point: HookPoint): void };
}

/** What a `transaction()` callback may do; it runs synchronously under the write lock. */
export interface DurableTx {
  run(sql: string, params?: readonly SqlParam[]): void;
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
}

type Settle = { resolve(v: unknown): void; reject(e: unknown): void };
type Pending =
  | (Settle & { kind: "stmts"; statements: SqlStatement[] })
  | (Settle & { kind: "fn"; fn: (tx: DurableTx) => unknown })
  | (Settle & { kind: "compact"; removeJournal: boolean });

const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function checkParams(params: unknown, where: string): SqlParam[] {
  if (params === undefined || params === null) return [];
  if (!Array.isArray(params)) throw new StorageError(`${where}: statement parameters must be an array`);
  return params.map((p, i) => {
    if (typeof p === "string" || p === null) return p;
    if (typeof p === "number" && Number.isFinite(p)) return p;
    throw new StorageError(`${where}: parameter ${i + 1} must be a string, a finite number or null`);
  });
}

function checkSql(sql: unknown, where: string): string {
  if (typeof sql !== "string" || sql.trim() === "") throw new StorageError(`${where}: SQL must be a non-empty string`);
  if (CONTROL_SQL.test(sql)) throw new StorageError(`${where}: transaction control is managed by DurableSqlite: ${sql}`);
  return sql;
}

/** The generation a DB file image was compacted at (its user_version); 0 for an empty file. */
function dbGeneration(buf: Buffer, file: string): number {
  if (buf.length === 0) return 0;
  if (buf.length < 100 || !buf.subarray(0, 16).equals(SQLITE_MAGIC)) {
    throw new StorageError(`${file} is not an SQLite 3 database`);
  }
  return buf.readUInt32BE(GEN_AT);
}

function dbBaseOffset(buf: Buffer): number {
  return buf.length >= BASE_OFFSET_AT + 4 ? buf.readUInt32BE(BASE_OFFSET_AT) : 0;
}

const nextGen = (gen: number) => ((gen + 1) >>> 0) || 1;

/** A compaction image being written in the background (see startBackgroundCompaction). */
interface BackgroundCompaction {
  /** Journal offset (of the journal with inode `jIno`) up to which the image holds every record. */
  base: number;
  gen: number;
  dbIno: number;
  jIno: number;
  size: number;
  /** The written and synced temporary file, once ready to be installed. */
  tmp?: string;
}

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
  };
  /** The last background compaction failure (the writes themselves had succeeded). */
  lastCompactionError: unknown;

  private readonly dir: string;
  private readonly lock: ProcessLock;
  private db: MemoryDb | null = null;
  /** Prepared statements of `db` (created with it, freed before it is closed). */
  private raw: RawStatements | null = null;
  /** Generation of the DB image we loaded/wrote; inode of that file (kept open to pin the inode). */
  private gen = 0;
  private dbfd: number | null = null;
  private dbIno = -1;
  private dbSize = 0;
  /** The journal we follow: fd (pins the inode), inode, end of the last applied record. */
  private jfd: number | null = null;
  private jIno = -1;
  private jOffset = 0;
  /** The journal is older than the DB (or missing): nothing in it applies; the next writer replaces it. */
  private jStale = true;
  /**
   * The journal is one generation behind a DB written by a background compaction, which holds its
   * records up to `jBase`: only the records after that apply, and the next writer first moves them
   * into a journal of the DB's generation (rebaseJournal).
   */
  private jBehind = false;
  private jBase = 0;
  /**
   * The DB file we loaded is an image this host wrote, unchanged (its own checksum matches, see
   * db-image.ts). When not (a file from Prosody or sqlite3), it is re-stamped before a journal is
   * started on it, so that a later change by another program is always recognisable.
   */
  private dbOwn = true;
  private bg: BackgroundCompaction | undefined;
  /** No background compaction before this time (Date.now()): the last one failed. */
  private bgRetryAt = 0;
  /** Where the journal (by inode) stood at the last hint to the worker (see hintWorker). */
  private lastHint = { jIno: -1, at: 0 };
  /** Moves whenever this copy takes in changes it did not make itself (see foreignChanges()). */
  private foreign = 0;
  /**
   * We hold the lock and have held it since our copy last matched the files: nobody else can have
   * written, so neither reads nor the next commit need to look at the files. The lock is kept
   * between commits until another process asks for it (see flushOnce).
   */
  private current = false;

  private readonly encoder = new RecordEncoder();
  private readonly queue: Pending[] = [];
  /** A commit (lock wait, apply, append) or compaction is running: the next one waits. */
  private busy = false;
  /** A commit is scheduled for after the current I/O phase. */
  private scheduled = false;
  /** Commits whose fdatasync has not completed yet (see kick()). */
  private syncsInFlight = 0;
  private inFlush = false;
  private drainWaiters: (() => void)[] = [];
  private closing: Promise<void> | null = null;
  private closed = false;

  private constructor(
    private readonly SQL: SqlJsStatic,
    private readonly memory: WasmMemory,
    file: string,
    realFile: string,
    private readonly opts: DurableSqliteOptions,
  ) {
    this.file = file;
    this.journalFile = file + JOURNAL_SUFFIX;
    this.dir = path.dirname(file);
    this.lock = new ProcessLock(path.dirname(realFile), path.basename(realFile), file, opts.lockTimeoutMs ?? 30_000);
    // Another process waits for the lock we kept after a commit: hand it over now, unless a
    // commit or compaction is using it (that one hands it over when it ends).
    this.lock.onWaiter = () => {
      if (!this.inFlush) this.releaseLock();
    };
  }

  /** Opens (creating if needed) the database `file`. Prefer one instance per file per process. */
  static async open(file: string, opts: DurableSqliteOptions = {}): Promise<DurableSqlite> {
    const { SQL, memory } = await loadSqlJs();
    const abs = path.resolve(file);
    let realFile: string;
    try {
      fs.mkdirSync(path.dirname(abs), { recursive: true, mode: DIR_MODE });
      realFile = path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
    } catch (err) {
      throw new StorageError(`${abs}: cannot create its directory: ${errMsg(err)}`);
    }
    const inst = new DurableSqlite(SQL, memory, abs, realFile, opts);
    await inst.init();
    return inst;
  }

  /** Current generation (compaction count of the DB file). */
  get generation(): number {
    return this.gen;
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
    return this.jOffset;
  }

  // ------------------------------------------------------------------------------------------------
  // Public API

  /** Queues one group of statements, applied atomically; resolves once durable. */
  execute(statements: readonly SqlStatement[]): Promise<void> {
    let copy: SqlStatement[];
    try {
      this.assertWritable();
      if (!Array.isArray(statements)) throw new StorageError(`${this.file}: execute() takes a list of [sql, params]`);
      copy = statements.map((s) => {
        if (!Array.isArray(s)) throw new StorageError(`${this.file}: each statement must be [sql, params]`);
        return [checkSql(s[0], this.file), checkParams(s[1], this.file)] as const;
      });
    } catch (err) {
      return Promise.reject(err);
    }
    if (copy.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: "stmts", statements: copy, resolve: () => resolve(), reject });
      this.kick();
    });
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
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ kind: "fn", fn, resolve: resolve as (v: unknown) => void, reject });
      this.kick();
    });
  }

  /** All rows of a query, on the latest committed state of all processes. */
  all(sql: string, params: readonly SqlParam[] = []): SqlRow[] {
    this.assertOpen();
    this.refresh();
    return this.query(sql, params);
  }

  /** The first row of a query, or undefined. */
  get(sql: string, params: readonly SqlParam[] = []): SqlRow | undefined {
    this.assertOpen();
    this.refresh();
    return this.query(sql, params, true)[0];
  }

  /**
   * get() without its freshness check, for a read made right after foreignChanges() in the same
   * synchronous step (that call already took in other processes' changes).
   */
  getChecked(sql: string, params: readonly SqlParam[] = []): SqlRow | undefined {
    this.assertOpen();
    return this.query(sql, params, true)[0];
  }

  /**
   * Takes in other processes' committed changes (as every read does) and returns a counter that
   * moves whenever this copy has taken in changes it did not make itself (records appended by other
   * processes, a reload after someone else's compaction). A cache of reads stays valid while this
   * counter, and its owner's record of its own writes, are unchanged.
   */
  foreignChanges(): number {
    this.assertOpen();
    this.refresh();
    return this.foreign;
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
        else await this.drain();
      } catch (err) {
        failure = err;
      }
      await this.drain();
      this.closed = true;
      this.dropDb();
      snapshots.forget(this.file); // the compaction worker's copy of this store, if it has one
      this.closeFd("jfd");
      this.closeFd("dbfd");
      this.releaseLock();
      this.lock.close();
      if (failure) throw failure;
    })();
    return this.closing;
  }

  // ------------------------------------------------------------------------------------------------
  // Opening and loading

  private async init(): Promise<void> {
    this.checkForeignJournals();
    await this.lock.acquire();
    try {
      // Nothing is changed on disk until the files are known to be usable (a refusal changes no file).
      if (!fs.existsSync(this.file)) {
        const j = fs.statSync(this.journalFile, { throwIfNoEntry: false });
        if (j && j.size > HEADER_SIZE) throw new MissingDatabaseError(this.file, this.journalFile);
        this.createDbFile();
      }
      this.loadFromDisk();
      removeTempFiles(this.dir, [path.basename(this.file), path.basename(this.journalFile)]);
      if (!this.dbOwn) this.restampDbFile();
      if (this.jStale) this.replaceJournal();
    } catch (err) {
      this.dropDb();
      this.closeFd("jfd");
      this.closeFd("dbfd");
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

  /** A new empty database file (under the lock). Generation 1, or past a leftover journal's. */
  private createDbFile(): void {
    let gen = 1;
    try {
      const fd = fs.openSync(this.journalFile, "r");
      try {
        gen = decodeHeader(readAtSync(fd, 0, HEADER_SIZE), this.journalFile) + 1;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      /* no (valid) leftover journal */
    }
    const empty = new this.SQL.Database();
    const img = empty.export();
    empty.close();
    atomicWriteSync(this.file, stampImage(img, gen, 0), { mode: FILE_MODE });
  }

  /**
   * (Re)loads the DB file and the journal from disk. Runs with or without the lock: the journal is
   * opened before the DB is read, and compaction renames the DB before the journal, so a journal we
   * opened is never newer than the DB we then read.
   */
  private loadFromDisk(): void {
    for (let attempt = 0; ; attempt++) {
      let jfd: number | null = null;
      let dfd: number | null = null;
      try {
        let jgen = -1;
        let jIno = -1;
        let jSize = 0;
        try {
          jfd = fs.openSync(this.journalFile, "r+");
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
        if (jfd !== null) {
          const st = fs.fstatSync(jfd);
          jIno = st.ino;
          jSize = st.size;
          jgen = decodeHeader(readAtSync(jfd, 0, HEADER_SIZE), this.journalFile);
        }
        dfd = fs.openSync(this.file, "r");
        const dst = fs.fstatSync(dfd);
        const img = readAtSync(dfd, 0, dst.size);
        const dgen = dbGeneration(img, this.file);
        const base = dbBaseOffset(img);
        if (jfd !== null && jgen > dgen) {
          // Cannot happen with our own ordering; maybe someone restored an old DB file by hand.
          if (attempt < 3) {
            sleepSync(10);
            continue;
          }
          throw new StorageError(
            `${this.file}: the database file (generation ${dgen}) is older than its journal ${this.journalFile} (generation ${jgen}); was the database file replaced?`,
          );
        }
        // Which journal records apply (as decided below): refuse to replay any on a file someone else changed.
        const follows = jfd !== null && nextGen(jgen) === dgen && base >= HEADER_SIZE && base <= jSize;
        const stale = jfd === null || (jgen < dgen && !follows);
        const own = isOwnImage(img);
        if (!own && !stale) refuseForeignRecords(this.file, this.journalFile, jfd!, follows ? base : HEADER_SIZE, jSize);
        if (img.length >= 20 && (img[18] === 2 || img[19] === 2)) {
          img[18] = 1; // WAL-mode file (checked empty -wal at open): read it in rollback mode
          img[19] = 1;
        }
        let db: MemoryDb | undefined;
        let raw: RawStatements;
        try {
          db = MemoryDb.load(this.SQL, this.memory, img);
          db.exec(CONNECTION_PRAGMAS);
          raw = new RawStatements(this.SQL, this.memory, db, STATEMENT_CACHE_MAX);
        } catch (err) {
          db?.close();
          throw new StorageError(`${this.file}: cannot load the database: ${errMsg(err)}`);
        }
        this.dropDb();
        this.closeFd("jfd");
        this.closeFd("dbfd");
        this.db = db;
        this.raw = raw;
        this.gen = dgen;
        this.dbfd = dfd;
        dfd = null;
        this.dbIno = dst.ino;
        this.dbSize = dst.size;
        this.jfd = jfd;
        jfd = null;
        this.jIno = jIno;
        this.dbOwn = own;
        // A background compaction's DB that has not had its journal rebased yet (it died between
        // the two renames, or we caught it in between): the old journal continues after `base`.
        this.jOffset = follows ? base : HEADER_SIZE;
        this.jStale = stale;
        this.jBehind = follows;
        this.jBase = follows ? base : 0;
        this.stats.reloads++;
        this.foreign++;
        if (!this.jStale) this.catchUp(jSize);
        return;
      } catch (err) {
        if (err instanceof StorageError) throw err;
        throw new StorageError(`${this.file}: cannot load: ${errMsg(err)}`);
      } finally {
        if (jfd !== null) fs.closeSync(jfd);
        if (dfd !== null) fs.closeSync(dfd);
      }
    }
  }

  /**
   * Under the lock, before a journal is started on a DB file this host did not write (a Prosody
   * file, or one changed after our last close): the same bytes, stamped as ours (own checksum) at
   * the next generation, replace it. Any journal left is then stale and is replaced.
   */
  private restampDbFile(): void {
    const img = readAtSync(this.dbfd!, 0, fs.fstatSync(this.dbfd!).size);
    const gen = nextGen(this.gen);
    atomicWriteSync(this.file, stampImage(img, gen, 0), lookOf(this.file));
    const dfd = fs.openSync(this.file, "r");
    this.closeFd("dbfd");
    this.dbfd = dfd;
    this.dbIno = fs.fstatSync(dfd).ino;
    this.gen = gen;
    this.dbOwn = true;
    this.jStale = true;
    this.jBehind = false;
  }

  /** Applies the complete records between our offset and `size` (one transaction). */
  private catchUp(size: number): void {
    if (size <= this.jOffset || this.jfd === null) return;
    let buf = readAtSync(this.jfd, this.jOffset, size - this.jOffset);
    let parsed;
    try {
      parsed = parseRecords(buf, this.journalFile, this.jOffset);
    } catch (err) {
      // Without the lock, a read racing a writer that truncates a torn tail and appends could
      // see old tail bytes before newer records: look again before calling it damage.
      if (!(err instanceof JournalDamagedError) || this.lock.held) throw err;
      sleepSync(20);
      buf = readAtSync(this.jfd, this.jOffset, fs.fstatSync(this.jfd).size - this.jOffset);
      parsed = parseRecords(buf, this.journalFile, this.jOffset);
    }
    const { records, validLength } = parsed;
    if (records.length) {
      this.foreign++;
      this.runStmt("BEGIN");
      try {
        for (const rec of records) for (const [sql, params] of rec) this.runStmt(sql, params);
        this.runStmt("COMMIT");
      } catch (err) {
        try {
          this.runStmt("ROLLBACK");
        } catch {
          /* keep the original error */
        }
        throw new StorageError(`${this.journalFile}: replaying the journal from offset ${this.jOffset} failed: ${errMsg(err)}`);
      }
      this.stats.recordsReplayed += records.length;
    }
    this.jOffset += validLength;
  }

  /** Cheap freshness check before a read (no lock). */
  private refresh(): void {
    if (this.inFlush || this.current) return; // we hold the lock: nobody else can have written
    const st = fs.statSync(this.journalFile, { throwIfNoEntry: false });
    if (this.jfd !== null && st && st.ino === this.jIno) {
      if (this.jStale || st.size === this.jOffset) return;
      if (st.size > this.jOffset) return this.catchUp(st.size);
    } else if (this.jfd === null && !st) {
      return; // stale without a journal: the DB file is complete until a writer recreates the journal
    }
    this.loadFromDisk();
  }

  /** Under the lock: make our state current and the journal ready for an append. */
  private syncUnderLock(): void {
    const dst = fs.statSync(this.file, { throwIfNoEntry: false });
    if (!dst) throw new StorageError(`${this.file}: the database file has disappeared`);
    const jst = fs.statSync(this.journalFile, { throwIfNoEntry: false });
    if (dst.ino !== this.dbIno || this.db === null || this.jfd === null || !jst || jst.ino !== this.jIno || jst.size < this.jOffset) {
      this.loadFromDisk();
    } else if (!this.jStale) {
      this.catchUp(jst.size);
    }
    if (!this.dbOwn) this.restampDbFile();
    if (this.jStale) {
      removeTempFiles(this.dir, [path.basename(this.file), path.basename(this.journalFile)]);
      this.replaceJournal();
      return;
    }
    if (this.jBehind) {
      this.truncateTornTail();
      this.rebaseJournal();
      return;
    }
    this.truncateTornTail();
  }

  /** A torn tail left by a writer that died mid-append was never committed: cut it off. */
  private truncateTornTail(): void {
    const size = fs.fstatSync(this.jfd!).size;
    if (size <= this.jOffset) return;
    reportTornTail(this.jfd!, this.journalFile, this.jOffset, size, this.opts.log);
    fs.ftruncateSync(this.jfd!, this.jOffset);
  }

  /**
   * Under the lock, with the journal one generation behind the DB: a journal of the DB's generation
   * holding the records after `jBase` (those the DB does not have) replaces it.
   */
  private rebaseJournal(): void {
    const tail = readAtSync(this.jfd!, this.jBase, this.jOffset - this.jBase);
    const look = lookOf(this.file);
    atomicWriteSync(this.journalFile, Buffer.concat([encodeHeader(this.gen), tail]), look, () =>
      this.hook("compact:before-journal-rename"),
    );
    const fd = fs.openSync(this.journalFile, "r+");
    this.closeFd("jfd");
    this.jfd = fd;
    this.jIno = fs.fstatSync(fd).ino;
    this.jOffset = HEADER_SIZE + tail.length;
    this.jBehind = false;
    this.jBase = 0;
  }

  /** Under the lock: a fresh, empty journal of the DB's generation replaces the current one. */
  private replaceJournal(): void {
    const look = lookOf(this.file);
    atomicWriteSync(this.journalFile, encodeHeader(this.gen), look, () => this.hook("compact:before-journal-rename"));
    const fd = fs.openSync(this.journalFile, "r+");
    this.closeFd("jfd");
    this.jfd = fd;
    this.jIno = fs.fstatSync(fd).ino;
    this.jOffset = HEADER_SIZE;
    this.jStale = false;
    this.jBehind = false;
    this.jBase = 0;
  }

  // ------------------------------------------------------------------------------------------------
  // Writing

  private assertOpen(): void {
    if (this.closed || !this.db) throw new StorageError(`${this.file}: database is closed`);
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.closing) throw new StorageError(`${this.file}: database is closing`);
  }

  private hook(point: HookPoint): void {
    this.opts.hooks?.at?.(point);
  }

  /**
   * Schedules a commit of whatever is queued. Commits are pipelined: the next one may apply and
   * append while the previous one's fdatasync is still running (each waits for its own sync), so
   * a writer never waits for a sync that started before its write was queued. At most
   * MAX_SYNCS_IN_FLIGHT syncs overlap; beyond that, writes gather into the next, larger commit.
   * A commit starts after the current I/O phase, so every request read in this turn of the event
   * loop has queued its writes by then and they share one commit.
   */
  private kick(): void {
    if (this.busy || this.scheduled) return;
    const install = this.bg?.tmp !== undefined;
    if (!install && (this.queue.length === 0 || this.syncsInFlight >= MAX_SYNCS_IN_FLIGHT)) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.runFlush();
    });
  }

  private async runFlush(): Promise<void> {
    if (this.busy || (this.queue.length === 0 && !this.bg?.tmp)) return this.settleDrain();
    this.busy = true;
    try {
      if (this.bg?.tmp) await this.installBackgroundCompaction();
      if (this.queue.length) await this.flushOnce();
    } finally {
      this.busy = false;
      this.kick();
      this.settleDrain();
    }
  }

  private idle(): boolean {
    return !this.busy && !this.scheduled && this.syncsInFlight === 0 && this.queue.length === 0 && !this.bg;
  }

  private settleDrain(): void {
    if (!this.idle() || this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once nothing is queued, committing or syncing. */
  private drain(): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private enqueueCompact(removeJournal: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: "compact", removeJournal, resolve: () => resolve(), reject });
      this.kick();
    });
  }

  private compactThreshold(): number {
    return this.opts.compactThresholdBytes ?? Math.max(this.opts.compactMinBytes ?? DEFAULT_COMPACT_MIN, this.dbSize);
  }

  /**
   * One group commit. Never throws: failures reject the affected promises.
   *
   * The lock covers catch-up, apply, the journal write() and the in-memory COMMIT, but not the
   * fdatasync: the next holder (maybe another process) reads our complete record from the page
   * cache and appends after it, and its own fdatasync flushes ours too, so concurrent processes'
   * syncs overlap (cross-process group commit). A promise still resolves only after an fdatasync
   * of the journal issued after its record was written.
   */
  private async flushOnce(): Promise<void> {
    if (!this.lock.held) {
      try {
        await this.lock.acquire();
      } catch (err) {
        for (const p of this.queue.splice(0)) p.reject(err);
        return;
      }
    }
    // Take the batch as late as possible: everything queued while we waited joins this commit.
    const batch = this.queue.splice(0);
    const done: [Settle, unknown][] = [];
    const compacts: (Settle & { removeJournal: boolean })[] = [];
    let inTx = false;
    // The fdatasync of this commit's record: started right after the append, so that it runs
    // while the in-memory COMMIT (and any compaction snapshot) is still busy on this thread.
    let syncing: { fd: number; done: Promise<void>; at: number } | null = null;
    this.inFlush = true;
    try {
      if (!this.current || this.jStale || this.jBehind || this.jfd === null || this.db === null) this.syncUnderLock();
      this.current = false; // until this commit has fully succeeded
      for (const p of batch) if (p.kind === "compact") compacts.push(p);
      this.runStmt("BEGIN");
      inTx = true;
      let applied = this.applyPlain(batch, done);
      if (applied === null) {
        // A group failed: start the transaction again, every group in a savepoint of its own.
        try {
          this.runStmt("ROLLBACK");
        } catch {
          /* some errors end the transaction themselves; if it is still open, BEGIN says so */
        }
        inTx = false;
        done.length = 0;
        this.runStmt("BEGIN");
        inTx = true;
        this.stats.guardedCommits++;
        applied = this.applyGuarded(batch, done);
      }
      if (applied.length) {
        const rec = this.encoder.encode(applied);
        const at = this.jOffset;
        const fd = this.jfd!;
        try {
          this.hook("append:before-write");
          // Synchronous on purpose: a page-cache copy of a few KB; an async write would keep the
          // lock held across a threadpool round trip.
          writeAllSync(fd, rec, at);
          this.hook("append:after-write");
        } catch (err) {
          try {
            fs.ftruncateSync(fd, at);
          } catch {
            /* the torn tail will be cut by the next writer */
          }
          throw new StorageError(`${this.journalFile}: cannot write the journal: ${errMsg(err)}`);
        }
        this.jOffset = at + rec.length;
        this.stats.records++;
        this.stats.journalBytesAppended += rec.length;
        this.encoder.trim();
        this.pinFd(fd);
        this.syncsInFlight++;
        syncing = { fd, done: fdatasync(fd), at };
        this.hook("append:before-commit");
      }
      this.runStmt("COMMIT");
      inTx = false;
    } catch (err) {
      if (inTx) {
        try {
          this.runStmt("ROLLBACK");
        } catch {
          this.dbIno = -1; // state unknown: reload before the next use
        }
      }
      const e = err instanceof StorageError ? err : new StorageError(`${this.file}: ${errMsg(err)}`);
      // Settled promises ignore this; groups not yet reached by the loop get it.
      for (const p of batch) p.reject(e);
      if (syncing) {
        // Appended but not committed: take the record back (we still hold the lock, so nobody
        // has read it), or a reload would bring back a write whose promise was rejected.
        try {
          fs.ftruncateSync(syncing.fd, syncing.at);
          this.jOffset = syncing.at;
        } catch {
          this.dbIno = -1; // cannot tell what the journal holds: reload before the next use
        }
        void this.syncEnded(syncing.fd, syncing.done.catch(() => {}));
      }
      this.inFlush = false;
      this.releaseLock();
      return;
    }

    // Asked for (compact(), close): now, under the lock. Grown past the threshold: in the background.
    const compactNow = compacts.length > 0;
    if (!compactNow) {
      if (this.jOffset > this.compactThreshold() && !this.bg && Date.now() >= this.bgRetryAt) this.startBackgroundCompaction();
      else this.hintWorker();
      this.inFlush = false;
      this.current = true;
      this.keepOrReleaseLock();
    }
    const settle = (err?: StorageError) => {
      this.stats.groups += done.length;
      for (const [p, v] of done) {
        if (err) p.reject(err);
        else p.resolve(v);
      }
    };
    if (syncing === null) settle();
    else {
      const synced = syncing.done.then(
        () => {
          this.stats.fsyncs++;
          this.hook("append:after-sync");
          settle();
        },
        (err: unknown) => {
          // The record is in the journal (others may have built on it): it cannot be taken back.
          settle(new StorageError(`${this.journalFile}: fdatasync failed, the write may not be durable: ${errMsg(err)}`));
        },
      );
      void this.syncEnded(syncing.fd, synced);
      // A compaction starts only once this commit is durable (it resolves its writers first).
      if (compactNow) await synced;
    }

    if (compactNow) {
      let kept = false;
      try {
        const removeJournal = compacts.some((c) => c.removeJournal) && this.queue.length === 0;
        await this.compactLocked(removeJournal);
        kept = !removeJournal;
        for (const c of compacts) c.resolve(undefined);
      } catch (err) {
        const e = err instanceof StorageError ? err : new StorageError(`${this.file}: compaction failed: ${errMsg(err)}`);
        this.lastCompactionError = e;
        for (const c of compacts) c.reject(e);
      } finally {
        this.inFlush = false;
        if (kept) {
          this.current = true;
          this.keepOrReleaseLock();
        } else this.releaseLock();
      }
    }
  }

  /**
   * After a commit: keep the lock (the next commit then skips acquiring it and checking the files,
   * and reads skip their freshness check) unless another process waits for it, or did so in the
   * last CONTENDED_MS (writers in several processes: handing the lock over on request costs two
   * more wake-ups per commit than releasing it at once), or we are closing.
   */
  private keepOrReleaseLock(): void {
    if (this.lock.hasWaiters || this.closing || this.lock.sinceLastWaiter < CONTENDED_MS) this.releaseLock();
  }

  private releaseLock(): void {
    this.current = false;
    this.lock.release();
  }

  /** Bookkeeping once a commit's fdatasync (and its settling) is over; the next commit may start. */
  private async syncEnded(fd: number, settled: Promise<void>): Promise<void> {
    try {
      await settled;
    } finally {
      this.unpinFd(fd);
      this.syncsInFlight--;
      this.kick();
      this.settleDrain();
    }
  }

  /** An fd with an fdatasync in flight is closed only once the sync is done (fd numbers get reused). */
  private readonly pinnedFds = new Map<number, number>();
  private readonly closeWhenUnpinned = new Set<number>();

  private pinFd(fd: number): void {
    this.pinnedFds.set(fd, (this.pinnedFds.get(fd) ?? 0) + 1);
  }

  private unpinFd(fd: number): void {
    const n = (this.pinnedFds.get(fd) ?? 1) - 1;
    if (n > 0) {
      this.pinnedFds.set(fd, n);
      return;
    }
    this.pinnedFds.delete(fd);
    if (this.closeWhenUnpinned.delete(fd)) {
      try {
        fs.closeSync(fd);
      } catch {
        /* ignore */
      }
    }
  }

  /**
   * Applies a batch made only of statement lists without savepoints; null when a group failed
   * (the caller rolls back and uses applyGuarded). Why: a SAVEPOINT and its RELEASE cost time that
   * grows with the size of the page cache, and the working copy keeps every page in it: per
   * DELETE + INSERT, 13.7 µs without and 20.7 µs with them on a 400k-invite store. Failing groups
   * are rare (bad SQL from a plugin, a constraint), so those batches pay twice instead.
   * Statement lists can be run again; `transaction()` callbacks are not, so a batch holding one
   * goes straight to applyGuarded.
   */
  private applyPlain(batch: Pending[], done: [Settle, unknown][]): SqlStatement[] | null {
    if (batch.some((p) => p.kind === "fn")) return null;
    const applied: SqlStatement[] = [];
    for (const p of batch) {
      if (p.kind !== "stmts") continue;
      try {
        for (const [sql, params] of p.statements) this.runUser(sql, params);
      } catch {
        return null;
      }
      applied.push(...p.statements);
      done.push([p, undefined]);
    }
    return applied;
  }

  /** Applies a batch with each group in a savepoint: a failing group is undone and rejected alone. */
  private applyGuarded(batch: Pending[], done: [Settle, unknown][]): SqlStatement[] {
    const applied: SqlStatement[] = [];
    for (const p of batch) {
      if (p.kind === "compact") continue;
      this.runStmt("SAVEPOINT grp");
      try {
        if (p.kind === "stmts") {
          for (const [sql, params] of p.statements) this.runUser(sql, params);
          applied.push(...p.statements);
          done.push([p, undefined]);
        } else {
          const recorded: SqlStatement[] = [];
          const value = this.runTx(p.fn, recorded);
          applied.push(...recorded);
          done.push([p, value]);
        }
        this.runStmt("RELEASE grp");
      } catch (err) {
        this.runStmt("ROLLBACK TO grp");
        this.runStmt("RELEASE grp");
        p.reject(err);
      }
    }
    return applied;
  }

  private runUser(sql: string, params: readonly SqlParam[] | undefined): void {
    try {
      this.runStmt(sql, params);
    } catch (err) {
      throw new StorageError(`${this.file}: ${errMsg(err)} (in ${sql})`);
    }
  }

  private runTx(fn: (tx: DurableTx) => unknown, recorded: SqlStatement[]): unknown {
    let open = true;
    const check = () => {
      if (!open) throw new StorageError(`${this.file}: transaction used after its callback returned`);
    };
    const tx: DurableTx = {
      run: (sql, params) => {
        check();
        const s = checkSql(sql, this.file);
        const p = checkParams(params, this.file);
        this.runUser(s, p);
        recorded.push([s, p]);
      },
      all: (sql, params = []) => {
        check();
        return this.query(sql, params);
      },
      get: (sql, params = []) => {
        check();
        return this.query(sql, params, true)[0];
      },
    };
    try {
      const value = fn(tx);
      if (value && typeof (value as PromiseLike<unknown>).then === "function") {
        throw new StorageError(`${this.file}: transaction callbacks must be synchronous (got a promise)`);
      }
      return value;
    } finally {
      open = false;
    }
  }

  /**
   * Compaction without stopping writers. Here, right after a commit (under the lock, our copy
   * current): the next generation's image is the state as of the current journal offset. A worker
   * thread builds it from the files (snapshot-worker.ts; where that is not possible, sql.js exports
   * our copy here, which blocks the event loop ~2 ms per MB). Then, while commits go on appending to
   * the same journal, the image is written to a temporary file and synced;
   * installBackgroundCompaction() puts it in place.
   */
  private startBackgroundCompaction(): void {
    if (this.jOffset > 0xffffffff) return; // the offset must fit the header field (never near in practice)
    const gen = nextGen(this.gen);
    const base = this.jOffset;
    const bg: BackgroundCompaction = { base, gen, dbIno: this.dbIno, jIno: this.jIno, size: 0 };
    let written: Promise<{ tmp: string; size: number }>;
    if (this.workerCanFollow()) {
      // Right after a commit our copy is exactly the DB file + the journal up to `base`: the worker
      // builds and writes that from the files, and this thread does not freeze for the export.
      const look = lookOf(this.file);
      const at = this.filesAt();
      written = Promise.resolve()
        .then(() => {
          this.hook("compact:before-image-write");
          return snapshots.image({ ...at, gen, base, mode: look.mode, uid: look.uid, gid: look.gid });
        })
        .then((w) => {
          this.stats.workerSnapshots++;
          this.stats.workerLoads += w.loads;
          return w;
        });
    } else {
      let buf: Buffer;
      try {
        buf = stampImage(this.db!.export(), gen, base);
      } catch (err) {
        this.lastCompactionError = new StorageError(`${this.file}: compaction failed: ${errMsg(err)}`);
        this.bgRetryAt = Date.now() + COMPACT_RETRY_MS;
        return;
      }
      written = this.writeImage(buf).then((tmp) => ({ tmp, size: buf.length }));
    }
    this.bg = bg;
    written.then(
      ({ tmp, size }) => {
        bg.size = size;
        bg.tmp = tmp;
        this.kick();
      },
      (err: unknown) => {
        this.lastCompactionError = new StorageError(`${this.file}: compaction failed: ${errMsg(err)}`);
        this.bgRetryAt = Date.now() + COMPACT_RETRY_MS; // not an export per commit while the disk is full
        this.bg = undefined;
        this.kick();
        this.settleDrain();
      },
    );
  }

  /** Whether the snapshot worker can build images from our files (they match our copy right now). */
  private workerCanFollow(): boolean {
    return this.opts.compactInWorker !== false && snapshots.available() && !this.jBehind && !this.jStale && this.jfd !== null;
  }

  private filesAt(): FilesAt {
    return { dbFile: this.file, dbIno: this.dbIno, journalFile: this.journalFile, jIno: this.jIno, jGen: this.gen, to: this.jOffset };
  }

  /**
   * After a commit, when the journal has grown by an eighth of the compaction threshold since the
   * last hint: the worker applies the new records now, a slice at a time, so a compaction finds its
   * copy nearly current (see snapshot-worker.ts).
   */
  private hintWorker(): void {
    const since = this.lastHint.jIno === this.jIno ? this.lastHint.at : HEADER_SIZE;
    if (this.jOffset - since < this.compactThreshold() / 8 || !this.workerCanFollow()) return;
    this.lastHint = { jIno: this.jIno, at: this.jOffset };
    snapshots.follow(this.filesAt());
  }

  /** After a compaction renamed its image over the DB file: make the syncs durable, follow the new file. */
  private adoptNewDbFile(gen: number, size: number): void {
    fsyncDir(this.dir);
    const dfd = fs.openSync(this.file, "r");
    this.closeFd("dbfd");
    this.dbfd = dfd;
    this.dbIno = fs.fstatSync(dfd).ino;
    this.dbSize = size;
    this.gen = gen;
    this.stats.compactions++;
    this.stats.dbBytesWritten += size;
  }

  /** Writes a DB image to a new temporary file beside the DB and syncs it; returns its path. */
  private async writeImage(buf: Buffer, paced = true): Promise<string> {
    this.hook("compact:before-image-write");
    const look = lookOf(this.file);
    const tmp = `${this.file}.tmp-${randomSuffix()}`;
    const fh = await fsp.open(tmp, "wx", look.mode);
    try {
      try {
        await fh.chmod(look.mode);
        if (look.uid !== undefined && look.gid !== undefined && process.getuid?.() === 0) await fh.chown(look.uid, look.gid);
        let off = 0;
        while (off < buf.length) {
          const end = paced ? Math.min(buf.length, off + IMAGE_CHUNK) : buf.length;
          while (off < end) off += (await fh.write(buf, off, end - off, off)).bytesWritten;
          if (paced && off < buf.length) await fh.datasync();
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    return tmp;
  }

  /**
   * Runs between commits, under the lock: the background image replaces the DB file (generation + 1,
   * holding the journal up to `base`), then the journal's later records move into a journal of the
   * new generation (rebaseJournal). A crash between the two renames leaves a DB whose header says
   * how much of the old journal it holds, and loadFromDisk continues from there. If someone else
   * compacted meanwhile (DB or journal replaced), the image is out of date and is dropped.
   */
  private async installBackgroundCompaction(): Promise<void> {
    const bg = this.bg!;
    const tmp = bg.tmp!;
    if (!this.lock.held) {
      try {
        await this.lock.acquire();
      } catch (err) {
        this.lastCompactionError = err;
        this.bg = undefined;
        await fsp.rm(tmp, { force: true });
        return;
      }
    }
    this.inFlush = true;
    // Whether our copy is known to match the files when we are done (then the lock can be kept
    // with `current` set); a dropped image leaves that to the next commit's check.
    let ok = false;
    const outdated = () =>
      this.dbIno !== bg.dbIno || this.jIno !== bg.jIno || this.jfd === null || this.jStale || this.jBehind || this.jOffset < bg.base;
    try {
      // Someone else may have written (or compacted) while the lock was theirs.
      if (!outdated() && !this.current) this.syncUnderLock();
      if (outdated() || this.db === null) {
        fs.rmSync(tmp, { force: true });
        return;
      }
      this.truncateTornTail();
      this.hook("compact:before-db-rename");
      try {
        fs.renameSync(tmp, this.file);
      } catch (err) {
        fs.rmSync(tmp, { force: true });
        // A process opening the store removes leftover temporary files; ours may have been taken
        // for one. Nothing changed on disk: the next compaction will do.
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          ok = true;
          return;
        }
        throw err;
      }
      this.adoptNewDbFile(bg.gen, bg.size);
      this.jBehind = true;
      this.jBase = bg.base;
      this.hook("compact:after-db-rename");
      this.rebaseJournal();
      this.hook("compact:after-journal-rename");
      ok = true;
    } catch (err) {
      this.lastCompactionError = err instanceof StorageError ? err : new StorageError(`${this.file}: compaction failed: ${errMsg(err)}`);
      this.dbIno = -1; // reload before the next use: the files are valid, our view of them may not be
    } finally {
      this.bg = undefined;
      this.inFlush = false;
      if (ok) {
        this.current = true;
        this.keepOrReleaseLock();
      } else this.releaseLock();
      this.settleDrain();
    }
  }

  /**
   * Under the lock, outside a transaction: write the in-memory DB as the new DB file (generation + 1),
   * then replace (or remove) the journal.
   */
  private async compactLocked(removeJournal: boolean): Promise<void> {
    // Nothing journaled since the last compaction (or the journal is stale): the DB file is already
    // complete, so skip rewriting it (a read-only prosodyctl command closes in microseconds).
    if (this.jStale || this.jfd === null || this.jOffset <= HEADER_SIZE) {
      if (removeJournal && fs.existsSync(this.journalFile)) {
        fs.rmSync(this.journalFile, { force: true });
        fsyncDir(this.dir);
        this.closeFd("jfd");
      }
      return;
    }
    const db = this.db!;
    const newGen = nextGen(this.gen);
    const buf = stampImage(db.export(), newGen, 0); // base 0: the journal is replaced or removed, the image holds it all
    // Not paced: nothing else may write meanwhile (we hold the lock), so the sooner the better.
    const tmp = await this.writeImage(buf, false);
    try {
      this.hook("compact:before-db-rename");
      await fsp.rename(tmp, this.file);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    this.adoptNewDbFile(newGen, buf.length);
    // From here the DB file holds everything; the journal we follow is stale.
    this.jStale = true;
    this.hook("compact:after-db-rename");
    if (removeJournal) {
      fs.rmSync(this.journalFile, { force: true });
      fsyncDir(this.dir);
      this.closeFd("jfd");
    } else {
      this.replaceJournal();
    }
    this.hook("compact:after-journal-rename");
  }

  // ------------------------------------------------------------------------------------------------
  // sql.js plumbing

  private runStmt(sql: string, params?: readonly SqlParam[]): void {
    this.raw!.run(sql, params);
  }

  private query(sql: string, params: readonly SqlParam[], first = false): SqlRow[] {
    try {
      return this.raw!.rows(sql, params, first);
    } catch (err) {
      throw new StorageError(`${this.file}: ${errMsg(err)} (in ${sql})`);
    }
  }

  private dropDb(): void {
    this.raw?.free();
    this.raw = null;
    this.db?.close();
    this.db = null;
  }

  private closeFd(which: "jfd" | "dbfd"): void {
    const fd = this[which];
    if (fd !== null) {
      this[which] = null;
      if (this.pinnedFds.has(fd)) {
        this.closeWhenUnpinned.add(fd);
        return;
      }
      try {
        fs.closeSync(fd);
      } catch {
        /* ignore */
      }
    }
  }
}
