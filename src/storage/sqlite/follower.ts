/**
 * The follower: keeps this process's working copy equal to the files (DB file + change journal)
 * that every process of ours writes, and gets the journal ready for our next append.
 * How the files are laid out and why: DESIGN.md, "Files" and "Read path".
 */
import fs from "node:fs";
import path from "node:path";
import type { SqlJsStatic } from "sql.js";
import { StorageError } from "../types.js";
import { atomicWriteSync, removeTempFiles } from "./atomic-file.js";
import { dbBaseOffset, dbGeneration, isOwnImage, nextGen, stampImage } from "./db-image.js";
import { FILE_MODE, PinnedFds, fsyncDir, lookOf, readAtSync, releaseBuffer } from "./fsutil.js";
import { MissingDatabaseError, refuseForeignRecords } from "./integrity.js";
import { HEADER_SIZE, JournalDamagedError, decodeHeader, encodeHeader, parseRecords } from "./journal.js";
import type { FilesAt } from "./snapshot-worker.js";
import type { WasmMemory } from "./sqljs.js";
import { reportTornTail, type TornTailLog } from "./torn-tail.js";
import { WorkingCopy, inPlaceSpare, readImage } from "./working-copy.js";
import type { WriterLock } from "./writer-lock.js";

/** What the journal we follow holds for our copy. */
export type JournalState =
  /** Older than the DB file, or missing: the DB file holds all of it; the next writer replaces it. */
  | { kind: "stale" }
  /** Of the DB file's generation: its records after the header apply. */
  | { kind: "live" }
  /**
   * One generation behind a DB file written by a background compaction, which holds its records
   * up to `base`: only the later ones apply, and the next writer moves them into a journal of the
   * DB's generation (rebaseJournal).
   */
  | { kind: "behind"; base: number };

export interface FollowerDeps {
  SQL: SqlJsStatic;
  memory: WasmMemory;
  file: string;
  journalFile: string;
  lock: WriterLock;
  log?: TornTailLog;
  /** Crash-test hook before a journal replacement is renamed into place. */
  beforeJournalRename(): void;
  stats: { reloads: number; recordsReplayed: number };
  /** Open the DB file's image in place rather than copying it (DurableSqliteOptions.workingCopy). */
  inPlace?: boolean;
}

const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** What the follower follows, and how far. */
interface FollowState {
  /** Generation of the DB file we loaded or wrote; that file (kept open to pin its inode). */
  gen: number;
  dbSize: number;
  dbIno: number;
  dbfd: number | null;
  /** The journal we follow: fd (pins the inode), inode, end of the last applied record. */
  jfd: number | null;
  jIno: number;
  offset: number;
  journal: JournalState;
  /**
   * The DB file we loaded is an image this host wrote, unchanged (its own checksum matches, see
   * db-image.ts). When not (a file from Prosody or sqlite3), it is re-stamped before a journal is
   * started on it, so that a later change by another program is always recognisable.
   */
  dbOwn: boolean;
  /** Moves whenever this copy takes in changes it did not make itself. */
  foreign: number;
}

export class Follower {
  private copy: WorkingCopy | null = null;
  private readonly state: FollowState = {
    gen: 0,
    dbSize: 0,
    dbIno: -1,
    dbfd: null,
    jfd: null,
    jIno: -1,
    offset: 0,
    journal: { kind: "stale" },
    dbOwn: true,
    foreign: 0,
  };
  private readonly dir: string;
  private readonly fds = new PinnedFds();

  constructor(private readonly d: FollowerDeps) {
    this.dir = path.dirname(d.file);
  }

  /** Generation of the DB file we follow. */
  get gen(): number {
    return this.state.gen;
  }

  /** Size of the DB file we follow (as loaded or written by us). */
  get dbSize(): number {
    return this.state.dbSize;
  }

  /** Inodes of the DB file and journal we follow (held open, so they cannot be reused). */
  get dbIno(): number {
    return this.state.dbIno;
  }

  get jIno(): number {
    return this.state.jIno;
  }

  /** The journal's descriptor (null: none followed; the next sync under the lock reloads). */
  get jfd(): number | null {
    return this.state.jfd;
  }

  /** End of the last journal record applied to our copy (header included). */
  get offset(): number {
    return this.state.offset;
  }

  get journal(): JournalState {
    return this.state.journal;
  }

  /** Moves whenever this copy takes in changes it did not make itself (other processes' records, a reload). */
  get foreign(): number {
    return this.state.foreign;
  }

  /** The working copy (only while loaded). */
  get db(): WorkingCopy {
    return this.copy!;
  }

  get loaded(): boolean {
    return this.copy !== null;
  }

  /** The files as our copy stands for them (for the compaction worker). */
  filesAt(): FilesAt {
    const d = this.d;
    return { dbFile: d.file, dbIno: this.state.dbIno, journalFile: d.journalFile, jIno: this.state.jIno, jGen: this.state.gen, to: this.state.offset };
  }

  // --- opening -------------------------------------------------------------------------------

  /** Under the lock, at open: makes the files usable (a refusal throws and changes no file). */
  openUnderLock(): void {
    const d = this.d;
    if (!fs.existsSync(d.file)) {
      const j = fs.statSync(d.journalFile, { throwIfNoEntry: false });
      if (j && j.size > HEADER_SIZE) throw new MissingDatabaseError(d.file, d.journalFile);
      this.createDbFile();
    }
    this.load();
    removeTempFiles(this.dir, [path.basename(d.file), path.basename(d.journalFile)]);
    if (!this.state.dbOwn) this.restampDbFile();
    if (this.state.journal.kind === "stale") this.replaceJournal();
  }

  /** A new empty database file (under the lock). Generation 1, or past a leftover journal's. */
  private createDbFile(): void {
    let gen = 1;
    try {
      const fd = fs.openSync(this.d.journalFile, "r");
      try {
        gen = decodeHeader(readAtSync(fd, 0, HEADER_SIZE), this.d.journalFile) + 1;
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      /* no (valid) leftover journal */
    }
    const empty = new this.d.SQL.Database();
    const img = empty.export();
    empty.close();
    atomicWriteSync(this.d.file, stampImage(img, gen, 0), { mode: FILE_MODE });
  }

  // --- loading and catching up ---------------------------------------------------------------

  /**
   * (Re)loads the DB file and the journal from disk. Runs with or without the lock: the journal is
   * opened before the DB is read, and compaction renames the DB before the journal, so a journal we
   * opened is never newer than the DB we then read.
   */
  load(): void {
    const { file, journalFile } = this.d;
    for (let attempt = 0; ; attempt++) {
      let jfd: number | null = null;
      let dfd: number | null = null;
      try {
        let jgen = -1;
        let jIno = -1;
        let jSize = 0;
        try {
          jfd = fs.openSync(journalFile, "r+");
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        }
        if (jfd !== null) {
          const st = fs.fstatSync(jfd);
          jIno = st.ino;
          jSize = st.size;
          jgen = decodeHeader(readAtSync(jfd, 0, HEADER_SIZE), journalFile);
        }
        dfd = fs.openSync(file, "r");
        const dst = fs.fstatSync(dfd);
        // In place, with room to grow into (a command's writes), so that no copy is made for a fold.
        const spare = this.d.inPlace ? inPlaceSpare(dst.size) : 0;
        const img = readImage(dfd, dst.size, spare);
        const dgen = dbGeneration(img, file);
        const base = dbBaseOffset(img);
        if (jfd !== null && jgen > dgen) {
          // Cannot happen with our own ordering; maybe someone restored an old DB file by hand.
          if (attempt < 3) {
            sleepSync(10);
            continue;
          }
          throw new StorageError(
            `${file}: the database file (generation ${dgen}) is older than its journal ${journalFile} (generation ${jgen}); was the database file replaced?`,
          );
        }
        // Which journal records apply (as decided below): refuse to replay any on a file someone else changed.
        const follows = jfd !== null && nextGen(jgen) === dgen && base >= HEADER_SIZE && base <= jSize;
        const stale = jfd === null || (jgen < dgen && !follows);
        const own = isOwnImage(img);
        if (!own && !stale) refuseForeignRecords(file, journalFile, jfd!, follows ? base : HEADER_SIZE, jSize);
        let copy: WorkingCopy;
        try {
          copy = WorkingCopy.load(this.d.SQL, this.d.memory, img, { inPlace: this.d.inPlace, room: img.length + spare });
        } catch (err) {
          throw new StorageError(`${file}: cannot load the database: ${errMsg(err)}`);
        }
        // Copied into the WebAssembly heap: the image is garbage (in place, it is the database).
        if (!this.d.inPlace) releaseBuffer(img);
        this.dropCopy();
        this.closeFd("jfd");
        this.closeFd("dbfd");
        this.copy = copy;
        this.state.gen = dgen;
        this.state.dbfd = dfd;
        dfd = null;
        this.state.dbIno = dst.ino;
        this.state.dbSize = dst.size;
        this.state.jfd = jfd;
        jfd = null;
        this.state.jIno = jIno;
        this.state.dbOwn = own;
        // A background compaction's DB whose journal was not rebased yet (it died between the two
        // renames, or we caught it in between): the old journal continues after `base`.
        this.state.offset = follows ? base : HEADER_SIZE;
        this.state.journal = stale ? { kind: "stale" } : follows ? { kind: "behind", base } : { kind: "live" };
        this.d.stats.reloads++;
        this.state.foreign++;
        if (!stale) this.catchUp(jSize);
        return;
      } catch (err) {
        if (err instanceof StorageError) throw err;
        throw new StorageError(`${file}: cannot load: ${errMsg(err)}`);
      } finally {
        if (jfd !== null) fs.closeSync(jfd);
        if (dfd !== null) fs.closeSync(dfd);
      }
    }
  }

  /** Applies the complete records between our offset and `size` (one transaction). */
  private catchUp(size: number): void {
    if (size <= this.state.offset || this.state.jfd === null) return;
    const journalFile = this.d.journalFile;
    let buf = readAtSync(this.state.jfd, this.state.offset, size - this.state.offset);
    let parsed;
    try {
      parsed = parseRecords(buf, journalFile, this.state.offset);
    } catch (err) {
      // Without the lock, a read racing a writer that truncates a torn tail and appends could
      // see old tail bytes before newer records: look again before calling it damage.
      if (!(err instanceof JournalDamagedError) || this.d.lock.held) throw err;
      sleepSync(20);
      buf = readAtSync(this.state.jfd, this.state.offset, fs.fstatSync(this.state.jfd).size - this.state.offset);
      parsed = parseRecords(buf, journalFile, this.state.offset);
    }
    const { records, validLength } = parsed;
    if (records.length) {
      this.state.foreign++;
      try {
        this.copy!.replay(records);
      } catch (err) {
        throw new StorageError(`${journalFile}: replaying the journal from offset ${this.state.offset} failed: ${errMsg(err)}`);
      }
      this.d.stats.recordsReplayed += records.length;
    }
    this.state.offset += validLength;
  }

  /** Cheap freshness check before a read (no lock): takes in what other processes committed. */
  refresh(): void {
    if (this.d.lock.exclusive) return; // we hold the lock: nobody else can have written
    const st = fs.statSync(this.d.journalFile, { throwIfNoEntry: false });
    if (this.state.jfd !== null && st && st.ino === this.state.jIno) {
      if (this.state.journal.kind === "stale" || st.size === this.state.offset) return;
      if (st.size > this.state.offset) return this.catchUp(st.size);
    } else if (this.state.jfd === null && !st) {
      return; // stale without a journal: the DB file is complete until a writer recreates the journal
    }
    this.load();
  }

  // --- under the lock: ready for an append -----------------------------------------------------

  /** Whether the next append may go ahead without looking at the files (given the lock was kept). */
  get readyToAppend(): boolean {
    return this.state.journal.kind === "live" && this.state.jfd !== null && this.copy !== null;
  }

  /** Under the lock: make our state current and the journal ready for an append. */
  syncUnderLock(): void {
    const { file, journalFile } = this.d;
    const dst = fs.statSync(file, { throwIfNoEntry: false });
    if (!dst) throw new StorageError(`${file}: the database file has disappeared`);
    const jst = fs.statSync(journalFile, { throwIfNoEntry: false });
    if (dst.ino !== this.state.dbIno || this.copy === null || this.state.jfd === null || !jst || jst.ino !== this.state.jIno || jst.size < this.state.offset) {
      this.load();
    } else if (this.state.journal.kind !== "stale") {
      this.catchUp(jst.size);
    }
    if (!this.state.dbOwn) this.restampDbFile();
    if (this.state.journal.kind === "stale") {
      removeTempFiles(this.dir, [path.basename(file), path.basename(journalFile)]);
      this.replaceJournal();
      return;
    }
    this.truncateTornTail();
    if (this.state.journal.kind === "behind") this.rebaseJournal();
  }

  /** A torn tail left by a writer that died mid-append was never committed: cut it off. */
  truncateTornTail(): void {
    const size = fs.fstatSync(this.state.jfd!).size;
    if (size <= this.state.offset) return;
    reportTornTail(this.state.jfd!, this.d.journalFile, this.state.offset, size, this.d.log);
    fs.ftruncateSync(this.state.jfd!, this.state.offset);
  }

  /**
   * Under the lock, before a journal is started on a DB file this host did not write (a Prosody
   * file, or one changed after our last close): the same bytes, stamped as ours (own checksum) at
   * the next generation, replace it. Any journal left is then stale and is replaced.
   */
  private restampDbFile(): void {
    const img = readImage(this.state.dbfd!, fs.fstatSync(this.state.dbfd!).size);
    const gen = nextGen(this.state.gen);
    atomicWriteSync(this.d.file, stampImage(img, gen, 0), lookOf(this.d.file));
    releaseBuffer(img);
    this.followDbFile(gen, this.state.dbSize);
    this.state.dbOwn = true;
    this.state.journal = { kind: "stale" };
  }

  /**
   * Under the lock, with the journal one generation behind the DB: a journal of the DB's generation
   * holding the records after the base (those the DB does not have) replaces it.
   */
  rebaseJournal(): void {
    if (this.state.journal.kind !== "behind") throw new Error("rebaseJournal: the journal is not behind the DB file");
    const { base } = this.state.journal;
    const tail = readAtSync(this.state.jfd!, base, this.state.offset - base);
    this.installJournal(Buffer.concat([encodeHeader(this.state.gen), tail]));
  }

  /** Under the lock: a fresh, empty journal of the DB's generation replaces the current one. */
  replaceJournal(): void {
    this.installJournal(encodeHeader(this.state.gen));
  }

  private installJournal(content: Buffer): void {
    atomicWriteSync(this.d.journalFile, content, lookOf(this.d.file), this.d.beforeJournalRename);
    const fd = fs.openSync(this.d.journalFile, "r+");
    this.closeFd("jfd");
    this.state.jfd = fd;
    this.state.jIno = fs.fstatSync(fd).ino;
    this.state.offset = content.length;
    this.state.journal = { kind: "live" };
  }

  // --- what the commit queue and compaction change ---------------------------------------------

  /** A record of ours was written at the end of the journal. */
  appended(end: number): void {
    this.state.offset = end;
  }

  /** A compaction renamed its image (generation `gen`, `size` bytes) over the DB file: follow it. */
  followDbFile(gen: number, size: number): void {
    const dfd = fs.openSync(this.d.file, "r");
    this.closeFd("dbfd");
    this.state.dbfd = dfd;
    this.state.dbIno = fs.fstatSync(dfd).ino;
    this.state.dbSize = size;
    this.state.gen = gen;
  }

  /** Compaction: the DB file now holds the whole journal (`behind`: up to `base`). */
  journalFolded(base?: number): void {
    this.state.journal = base === undefined ? { kind: "stale" } : { kind: "behind", base };
  }

  /** Compaction at close: the journal goes (the DB file holds it all). */
  removeJournal(): void {
    if (fs.existsSync(this.d.journalFile)) {
      fs.rmSync(this.d.journalFile, { force: true });
      fsyncDir(this.dir);
    }
    this.closeFd("jfd");
  }

  /** Our view of the files is in doubt (a failed rollback or truncation): reload under the lock before the next append. */
  invalidate(): void {
    this.state.dbIno = -1;
  }

  /** Keeps `fd` open (even if we stop following it) until unpin: an fdatasync on it is in flight. */
  pin(fd: number): void {
    this.fds.pin(fd);
  }

  unpin(fd: number): void {
    this.fds.unpin(fd);
  }

  close(): void {
    this.dropCopy();
    this.closeFd("jfd");
    this.closeFd("dbfd");
  }

  private dropCopy(): void {
    this.copy?.close();
    this.copy = null;
  }

  private closeFd(which: "jfd" | "dbfd"): void {
    const fd = this.state[which];
    if (fd === null) return;
    this.state[which] = null;
    this.fds.close(fd);
  }
}
