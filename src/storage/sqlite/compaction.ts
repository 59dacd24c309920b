/**
 * Compaction: folding the journal into a new DB file image, in the foreground (compact(), a
 * compacting close: under the lock, at once) or in the background (after a commit that took the
 * journal past the threshold: the image is built and written while commits go on, then installed
 * between two commits). Why and how it stays crash-safe: DESIGN.md, "Compaction".
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import { StorageError } from "../types.js";
import { installTemp, writeTemp, type HeadLast } from "./atomic-file.js";
import { IMAGE_CHUNK, STAMPED_HEADER_BYTES, nextGen, stampChecksum, stampFields, stampImage } from "./db-image.js";
import type { Follower } from "./follower.js";
import { lookOf, releaseBuffer } from "./fsutil.js";
import { HEADER_SIZE } from "./journal.js";
import type { SnapshotWorker } from "./snapshot-client.js";
import type { WriterLock } from "./writer-lock.js";

const DEFAULT_COMPACT_MIN = 8 * 1024 * 1024;
/** After a failed background compaction (disk full, …), the next attempt waits this long. */
const COMPACT_RETRY_MS = 10_000;

export type CompactionHook =
  | "compact:before-image-write"
  | "compact:before-db-rename"
  | "compact:after-db-rename"
  | "compact:before-journal-rename"
  | "compact:after-journal-rename";

export interface CompactionDeps {
  file: string;
  follower: Follower;
  lock: WriterLock;
  snapshots: SnapshotWorker;
  opts: { compactMinBytes?: number; compactThresholdBytes?: number; compactInWorker?: boolean };
  stats: { compactions: number; dbBytesWritten: number; workerSnapshots: number; workerLoads: number };
  hook(point: CompactionHook): void;
  /** An image is ready to install, or a background compaction ended: the commit queue looks again. */
  wake(): void;
}

/** A compaction image being written in the background (see startBackground). */
interface BackgroundImage {
  /** Journal offset (of the journal with inode `jIno`) up to which the image holds every record. */
  base: number;
  gen: number;
  dbIno: number;
  jIno: number;
  size: number;
  /** The written and synced temporary file, once ready to be installed. */
  tmp?: string;
}

const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));

export class Compaction {
  /** The last compaction failure (a background one does not fail any write). */
  lastError: unknown;
  private bg: BackgroundImage | undefined;
  /** No background compaction before this time (Date.now()): the last one failed. */
  private retryAt = 0;
  /** Where the journal (by inode) stood at the last hint to the worker (see hintWorker). */
  private lastHint = { jIno: -1, at: 0 };

  constructor(private readonly d: CompactionDeps) {}

  /** A background compaction is under way (its image being built, written or waiting). */
  get running(): boolean {
    return this.bg !== undefined;
  }

  /** A background image waits to be installed (by the commit queue, between two commits). */
  get imageReady(): boolean {
    return this.bg?.tmp !== undefined;
  }

  private threshold(): number {
    const o = this.d.opts;
    return o.compactThresholdBytes ?? Math.max(o.compactMinBytes ?? DEFAULT_COMPACT_MIN, this.d.follower.dbSize);
  }

  /** After a commit (under the lock, our copy current): start a background compaction when due. */
  afterCommit(): void {
    if (this.d.follower.offset > this.threshold() && !this.bg && Date.now() >= this.retryAt) this.startBackground();
    else this.hintWorker();
  }

  /** Whether the snapshot worker can build images from our files (they match our copy right now). */
  private workerCanFollow(): boolean {
    const f = this.d.follower;
    return this.d.opts.compactInWorker !== false && this.d.snapshots.available() && f.journal.kind === "live" && f.jfd !== null;
  }

  /**
   * When the journal has grown by an eighth of the compaction threshold since the last hint: the
   * worker applies the new records now, a slice at a time, so a compaction finds its copy nearly
   * current (see snapshot-worker.ts). A worker that is not running is started by a hint only past
   * half the threshold: a burst of writes that stays under it (folded on this thread once idle)
   * then never costs a second copy of the store, while one that goes on finds the worker's copy
   * half-way current when its compaction comes (starting the worker at the compaction instead, to
   * load and replay everything at once, measured p99 10-13 ms instead of 7 ms at 100k invites).
   */
  private hintWorker(): void {
    const f = this.d.follower;
    const since = this.lastHint.jIno === f.jIno ? this.lastHint.at : HEADER_SIZE;
    if (f.offset - since < this.threshold() / 8 || !this.workerCanFollow()) return;
    this.lastHint = { jIno: f.jIno, at: f.offset };
    this.d.snapshots.follow(f.filesAt(), f.offset >= this.threshold() / 2);
  }

  /**
   * Right after a commit, the next generation's image is the state as of the current journal
   * offset. The worker builds it from the files (where it cannot, sql.js exports our copy here,
   * blocking the event loop ~2 ms per MB); it is written to a temporary file and synced while
   * commits go on appending to the same journal; installBackground() puts it in place.
   */
  private startBackground(): void {
    const f = this.d.follower;
    if (f.offset > 0xffffffff) return; // the offset must fit the header field (never near in practice)
    const gen = nextGen(f.gen);
    const base = f.offset;
    const bg: BackgroundImage = { base, gen, dbIno: f.dbIno, jIno: f.jIno, size: 0 };
    let written: Promise<{ tmp: string; size: number }>;
    if (this.workerCanFollow()) {
      const look = lookOf(this.d.file);
      const at = f.filesAt();
      written = Promise.resolve()
        .then(() => {
          this.d.hook("compact:before-image-write");
          return this.d.snapshots.image({ ...at, gen, base, mode: look.mode, uid: look.uid, gid: look.gid });
        })
        .then((w) => {
          this.d.stats.workerSnapshots++;
          this.d.stats.workerLoads += w.loads;
          return w;
        });
    } else {
      let buf: Buffer;
      try {
        buf = stampImage(f.db.export(), gen, base);
      } catch (err) {
        this.failed(err);
        return;
      }
      const size = buf.length;
      written = this.writeImage(buf, true).then(
        (tmp) => {
          releaseBuffer(buf);
          return { tmp, size };
        },
        (err: unknown) => {
          releaseBuffer(buf);
          throw err;
        },
      );
    }
    this.bg = bg;
    written.then(
      ({ tmp, size }) => {
        bg.size = size;
        bg.tmp = tmp;
        this.d.wake();
      },
      (err: unknown) => {
        this.failed(err); // not an export per commit while the disk is full
        this.bg = undefined;
        this.d.wake();
      },
    );
  }

  private failed(err: unknown): void {
    this.lastError = new StorageError(`${this.d.file}: compaction failed: ${errMsg(err)}`);
    this.retryAt = Date.now() + COMPACT_RETRY_MS;
  }

  /**
   * Between commits, under the lock: the background image replaces the DB file (generation + 1,
   * holding the journal up to `base`), then the journal's later records move into a journal of the
   * new generation (rebaseJournal). A crash between the two renames leaves a DB whose header says
   * how much of the old journal it holds, and a load continues from there. If someone else
   * compacted meanwhile (DB or journal replaced), the image is out of date and is dropped.
   */
  async installBackground(): Promise<void> {
    const { follower: f, lock } = this.d;
    const bg = this.bg!;
    const tmp = bg.tmp!;
    let kept: boolean;
    try {
      kept = await lock.take();
    } catch (err) {
      this.lastError = err;
      this.bg = undefined;
      await fsp.rm(tmp, { force: true });
      return;
    }
    // Whether our copy is known to match the files when we are done (then the lock can be kept);
    // a dropped image leaves that to the next commit's check.
    let ok = false;
    const outdated = () =>
      f.dbIno !== bg.dbIno || f.jIno !== bg.jIno || f.jfd === null || f.journal.kind !== "live" || f.offset < bg.base;
    try {
      // Someone else may have written (or compacted) while the lock was theirs.
      if (!outdated() && !kept) f.syncUnderLock();
      if (outdated() || !f.loaded) {
        fs.rmSync(tmp, { force: true });
        return;
      }
      f.truncateTornTail();
      try {
        installTemp(tmp, this.d.file, () => this.d.hook("compact:before-db-rename"));
      } catch (err) {
        // A process opening the store removes leftover temporary files; ours may have been taken
        // for one. Nothing changed on disk: the next compaction will do.
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          ok = true;
          return;
        }
        throw err;
      }
      this.adopt(bg.gen, bg.size);
      f.journalFolded(bg.base);
      this.d.hook("compact:after-db-rename");
      f.rebaseJournal();
      this.d.hook("compact:after-journal-rename");
      ok = true;
    } catch (err) {
      this.lastError = err instanceof StorageError ? err : new StorageError(`${this.d.file}: compaction failed: ${errMsg(err)}`);
      f.invalidate(); // the files are valid, our view of them may not be
    } finally {
      this.bg = undefined;
      lock.done(ok);
      this.d.wake();
    }
  }

  /**
   * Under the lock, outside a transaction: write the working copy as the new DB file
   * (generation + 1), then replace (or remove) the journal.
   */
  async compactLocked(removeJournal: boolean): Promise<void> {
    const f = this.d.follower;
    // Nothing journaled since the last compaction (or the journal is stale): the DB file is already
    // complete, so skip rewriting it (a read-only prosodyctl command closes in microseconds).
    if (f.journal.kind === "stale" || f.jfd === null || f.offset <= HEADER_SIZE) {
      if (removeJournal) f.removeJournal();
      return;
    }
    const newGen = nextGen(f.gen);
    // In place (prosodyctl), the working copy's file is the image, not copied (MemoryDb.liveImage):
    // nothing writes to it until this returns (the commit queue waits for us). Else a copy.
    const live = f.db.liveImage(newGen);
    const buf = stampFields(live ?? f.db.export(), newGen, 0); // base 0: the journal is replaced or removed, the image holds it all
    const size = buf.length;
    let tmp: string;
    try {
      // Not paced: nothing else may write meanwhile (we hold the lock), so the sooner the better.
      // The checksum is computed while the rest of the image is being written.
      tmp = await this.writeImage(buf, false, { length: STAMPED_HEADER_BYTES, ready: () => stampChecksum(buf) });
    } finally {
      if (!live) releaseBuffer(buf); // the store's size: not left for a collection an idle process may not run
    }
    installTemp(tmp, this.d.file, () => this.d.hook("compact:before-db-rename"));
    this.adopt(newGen, size);
    // From here the DB file holds everything; the journal we follow is stale.
    f.journalFolded();
    this.d.hook("compact:after-db-rename");
    if (removeJournal) f.removeJournal();
    else f.replaceJournal();
    this.d.hook("compact:after-journal-rename");
  }

  /** Our image is the DB file now. */
  private adopt(gen: number, size: number): void {
    this.d.follower.followDbFile(gen, size);
    this.d.stats.compactions++;
    this.d.stats.dbBytesWritten += size;
  }

  /** Writes an image to a new temporary file beside the DB (paced: see IMAGE_CHUNK) and syncs it; a failing hook rejects. */
  private async writeImage(buf: Buffer, paced: boolean, head?: HeadLast): Promise<string> {
    this.d.hook("compact:before-image-write");
    return writeTemp(this.d.file, buf, lookOf(this.d.file), paced ? IMAGE_CHUNK : Infinity, head);
  }
}

