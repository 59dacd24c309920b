/**
 * Worker thread for background compaction: builds the new DB file image and writes it out.
 * (The main thread's side: snapshot-client.ts.)
 *
 * Why: sql.js builds a database image (`export()`) synchronously, page by page through JavaScript:
 * ~2 ms per MB, a 100 ms freeze of the server's event loop on a 50 MB store. The same image can be
 * built from the files instead: the database file plus the journal records up to the offset the
 * image stands for (the state every process reconstructs on load). This thread does that with its
 * own sql.js instance, writes the image to a temporary file beside the DB (paced, see IMAGE_CHUNK)
 * and hands back only its name; the main thread renames it into place under the lock.
 *
 * The copy is kept between requests and brought forward: `follow` messages (sent as the journal
 * grows) and image requests apply only the records after the copy's position, so the work of a
 * compaction is spread over the time between compactions instead of arriving as one burst of
 * reading, parsing and replaying everything since the last one. After its own image has become the
 * DB file and the journal was rebased (the records after the image's base, copied verbatim behind a
 * new header), the copy goes on from the new journal. Anything else (another process compacted, a
 * file it cannot explain) makes it start over from the files. There is one copy per database file,
 * dropped when the store is closed (`forget`).
 *
 * It refuses (an error reply) when the files are not the ones named: another process compacted
 * meanwhile, and the main thread then simply drops this compaction.
 */
import fs from "node:fs";
import os from "node:os";
import { parentPort } from "node:worker_threads";
import { writeTempKeptOpen } from "./atomic-file.js";
import { IMAGE_CHUNK, isOwnImage, stampImage } from "./db-image.js";
import { closeQuietly, readAtSync, releaseBuffer } from "./fsutil.js";
import { HEADER_SIZE, decodeHeader, parseRecords } from "./journal.js";
import { loadSqlJs } from "./sqljs.js";
import { WorkingCopy, readImage } from "./working-copy.js";

/** The files a state stands for: DB file + journal records [HEADER_SIZE, to). */
export interface FilesAt {
  dbFile: string;
  dbIno: number;
  journalFile: string;
  jIno: number;
  /** The journal's generation (its header) and the end of the records the copy must hold. */
  jGen: number;
  to: number;
}

export interface FollowRequest extends FilesAt {
  kind: "follow";
}

export interface ImageRequest extends FilesAt {
  kind: "image";
  id: number;
  /** Header fields of the image: its generation and how much of the journal it holds (= to). */
  gen: number;
  base: number;
  /** Mode and (for root) ownership of the temporary file. */
  mode: number;
  uid?: number;
  gid?: number;
}

/** The store was closed: drop its copy. */
export interface ForgetRequest {
  kind: "forget";
  dbFile: string;
}

export type WorkerRequest = FollowRequest | ImageRequest | ForgetRequest;

export type ImageReply =
  | {
      id: number;
      tmp: string;
      size: number;
      /** Journal records replayed for this request (the others were applied by earlier ones). */
      replayed: number;
      /** How often the copy was built from the files (not brought forward) since the last reply. */
      loads: number;
    }
  | { id: number; error: string };

/**
 * A working copy. Its DB file and journal are held open: an inode we hold cannot be reused, so
 * equal inode numbers prove the request names the very files the copy was built from.
 */
interface Copy {
  copy: WorkingCopy;
  dbFd: number;
  jFd: number;
  jGen: number;
  /** Journal offset up to which the copy holds the records. */
  pos: number;
  /** The last image written from it (held open), with its generation and journal base. */
  written?: { fd: number; gen: number; base: number };
}

/** One copy per database file (a process may have several stores open). */
const copies = new Map<string, Copy>();
let loads = 0;

const inoOf = (fd: number) => fs.fstatSync(fd).ino;

function openChecked(file: string, ino: number): number {
  const fd = fs.openSync(file, "r");
  if (inoOf(fd) !== ino) {
    fs.closeSync(fd);
    throw new Error(`${file} was replaced (another process compacted)`);
  }
  return fd;
}

function openJournal(r: FilesAt): number {
  const fd = openChecked(r.journalFile, r.jIno);
  try {
    if (decodeHeader(readAtSync(fd, 0, HEADER_SIZE), r.journalFile) !== r.jGen) throw new Error(`${r.journalFile}: generation changed`);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  return fd;
}

function dropCopy(dbFile: string): void {
  const c = copies.get(dbFile);
  if (!c) return;
  copies.delete(dbFile);
  c.copy.close();
  closeQuietly(c.dbFd);
  closeQuietly(c.jFd);
  if (c.written) closeQuietly(c.written.fd);
}

/** A copy that stands for the files `r` names at some offset ≤ r.to (reused when it can be). */
async function copyFor(r: FilesAt): Promise<Copy> {
  const c = copies.get(r.dbFile);
  if (c) {
    if (inoOf(c.dbFd) === r.dbIno && inoOf(c.jFd) === r.jIno && c.jGen === r.jGen && c.pos <= r.to) return c;
    const w = c.written;
    if (w && inoOf(w.fd) === r.dbIno && r.jGen === w.gen && c.pos >= w.base) {
      // Our image is the DB file now and the journal was rebased: old offset p is new offset
      // p - base + HEADER_SIZE (the records after the base were copied verbatim).
      const jFd = openJournal(r);
      closeQuietly(c.dbFd);
      closeQuietly(c.jFd);
      c.dbFd = w.fd;
      c.jFd = jFd;
      c.jGen = r.jGen;
      c.pos = c.pos - w.base + HEADER_SIZE;
      c.written = undefined;
      if (c.pos <= r.to) return c;
    }
    dropCopy(r.dbFile);
  }
  const { SQL, memory } = await loadSqlJs();
  loads++;
  const dbFd = openChecked(r.dbFile, r.dbIno);
  let jFd: number | undefined;
  try {
    jFd = openJournal(r);
    const img = readImage(dbFd, fs.fstatSync(dbFd).size);
    // Journal records are replayed only on the image they continue (see db-image.ts SELF_CRC_AT).
    if (!isOwnImage(img)) throw new Error(`${r.dbFile} was changed by another program; not replaying the journal on it`);
    const fresh: Copy = { copy: WorkingCopy.load(SQL, memory, img), dbFd, jFd, jGen: r.jGen, pos: HEADER_SIZE };
    releaseBuffer(img); // copied into the WebAssembly heap
    copies.set(r.dbFile, fresh);
    return fresh;
  } catch (err) {
    closeQuietly(dbFd);
    if (jFd !== undefined) closeQuietly(jFd);
    throw err;
  }
}

/** Brings the copy to exactly r.to; returns it and how many records that replayed. */
async function bringTo(r: FilesAt): Promise<{ c: Copy; replayed: number }> {
  const c = await copyFor(r);
  if (c.pos === r.to) return { c, replayed: 0 };
  let parsed;
  try {
    parsed = parseRecords(readAtSync(c.jFd, c.pos, r.to - c.pos), r.journalFile, c.pos);
  } catch (err) {
    dropCopy(r.dbFile); // damage: the next request starts over from the files (and checks them again)
    throw err;
  }
  if (parsed.validLength !== r.to - c.pos) {
    dropCopy(r.dbFile);
    throw new Error(`${r.journalFile}: fewer complete records than expected`);
  }
  try {
    c.copy.replay(parsed.records);
  } catch (err) {
    dropCopy(r.dbFile); // half applied: start over from the files next time
    throw err;
  }
  c.pos = r.to;
  return { c, replayed: parsed.records.length };
}

async function image(r: ImageRequest): Promise<ImageReply> {
  const { c, replayed } = await bringTo(r);
  const buf = stampImage(c.copy.export(), r.gen, r.base);
  // Kept open: its inode identifies it once the main thread has renamed it over the DB file.
  const size = buf.length;
  let written: { tmp: string; fd: number };
  try {
    written = writeTempKeptOpen(r.dbFile, buf, { mode: r.mode, uid: r.uid, gid: r.gid }, IMAGE_CHUNK);
  } finally {
    releaseBuffer(buf); // the store's size, written or not
  }
  const { tmp, fd } = written;
  if (c.written) closeQuietly(c.written.fd);
  c.written = { fd, gen: r.gen, base: r.base };
  const reply = { id: r.id, tmp, size, replayed, loads };
  loads = 0;
  return reply;
}

/**
 * Background work: this thread gets the lowest CPU priority, so that on a busy machine it uses spare
 * time instead of competing with the thread that serves requests. Linux applies setpriority() to a
 * single thread when given its id; elsewhere (or without /proc) this is skipped.
 */
function lowerPriority(): void {
  try {
    const tid = Number(fs.readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid) && tid > 0 && tid !== process.pid) os.setPriority(tid, 19);
  } catch {
    /* not Linux, or not allowed: run at normal priority */
  }
}

lowerPriority();

// One request at a time, in order: a follow and an image request must not interleave on the copy.
let queue: Promise<unknown> = Promise.resolve();
parentPort?.on("message", (r: WorkerRequest) => {
  queue = queue.then(async () => {
    if (r.kind === "forget") {
      dropCopy(r.dbFile);
      return;
    }
    if (r.kind === "follow") {
      // A hint only: whatever goes wrong here is found again (and reported) by the next image request.
      await bringTo(r).catch(() => dropCopy(r.dbFile));
      return;
    }
    const reply = await image(r).catch((err: unknown): ImageReply => ({ id: r.id, error: err instanceof Error ? err.message : String(err) }));
    parentPort!.postMessage(reply);
  });
});
