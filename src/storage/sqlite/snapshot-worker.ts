/**
 * Worker thread for background compaction snapshots.
 *
 * Why: sql.js builds a database image (`export()`) synchronously, page by page through JavaScript:
 * ~2 ms per MB, a 100 ms freeze of the server's event loop on a 50 MB store. The same image can be
 * built from the files instead: the database file plus the journal records up to the offset the
 * snapshot stands for (the state every process reconstructs on load). This thread does that with
 * its own sql.js instance and hands the image back; the main thread only writes it out.
 *
 * It refuses (an error reply) when the files are not the ones named: another process compacted
 * meanwhile, and the main thread then simply drops this compaction.
 */
import fs from "node:fs";
import os from "node:os";
import { parentPort } from "node:worker_threads";
import { readAtSync } from "./fsutil.js";
import { HEADER_SIZE, decodeHeader, parseRecords } from "./journal.js";
import { RawStatements } from "./raw-sqlite.js";
import { loadSqlJs } from "./sqljs.js";

export interface SnapshotRequest {
  id: number;
  dbFile: string;
  dbIno: number;
  journalFile: string;
  jIno: number;
  /** The journal's generation (its header) and the end of the records the image must hold. */
  jGen: number;
  to: number;
}

export type SnapshotReply = { id: number; image: Uint8Array } | { id: number; error: string };

function openChecked(file: string, ino: number): number {
  const fd = fs.openSync(file, "r");
  if (fs.fstatSync(fd).ino !== ino) {
    fs.closeSync(fd);
    throw new Error(`${file} was replaced (another process compacted)`);
  }
  return fd;
}

async function snapshot(r: SnapshotRequest): Promise<Uint8Array> {
  const { SQL, memory } = await loadSqlJs();
  let img: Buffer;
  let fd = openChecked(r.dbFile, r.dbIno);
  try {
    img = readAtSync(fd, 0, fs.fstatSync(fd).size);
  } finally {
    fs.closeSync(fd);
  }
  let records;
  fd = openChecked(r.journalFile, r.jIno);
  try {
    if (decodeHeader(readAtSync(fd, 0, HEADER_SIZE), r.journalFile) !== r.jGen) throw new Error(`${r.journalFile}: generation changed`);
    const parsed = parseRecords(readAtSync(fd, HEADER_SIZE, r.to - HEADER_SIZE), r.journalFile, HEADER_SIZE);
    if (parsed.validLength !== r.to - HEADER_SIZE) throw new Error(`${r.journalFile}: fewer complete records than expected`);
    records = parsed.records;
  } finally {
    fs.closeSync(fd);
  }
  if (img.length >= 20 && (img[18] === 2 || img[19] === 2)) img[18] = img[19] = 1; // as loadFromDisk
  const db = img.length ? new SQL.Database(img) : new SQL.Database();
  const raw = new RawStatements(SQL, memory, db);
  try {
    db.exec("PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY");
    raw.run("BEGIN");
    for (const rec of records) for (const [sql, params] of rec) raw.run(sql, params);
    raw.run("COMMIT");
    return db.export();
  } finally {
    raw.free();
    db.close();
  }
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

parentPort?.on("message", (r: SnapshotRequest) => {
  snapshot(r).then(
    (image) => parentPort!.postMessage({ id: r.id, image } satisfies SnapshotReply, [image.buffer as ArrayBuffer]),
    (err: unknown) => parentPort!.postMessage({ id: r.id, error: err instanceof Error ? err.message : String(err) } satisfies SnapshotReply),
  );
});
