/**
 * A working copy: the database as this process sees it, an SQLite in-memory database (mem-db.ts)
 * built from a DB file image and brought forward by replaying journal records. Built the same way
 * by every process (follower.ts) and by the compaction worker (snapshot-worker.ts), so both arrive
 * at the very state the files stand for.
 *
 * Its connection settings (CONNECTION_PRAGMAS) are never written to the DB file.
 */
import fs from "node:fs";
import type { SqlJsStatic } from "sql.js";
import { CONNECTION_PRAGMAS } from "./db-image.js";
import { readAtSync } from "./fsutil.js";
import type { SqlParam, SqlStatement } from "./journal.js";
import { MemoryDb } from "./mem-db.js";
import { RawStatements, type RawRow } from "./raw-sqlite.js";
import type { WasmMemory } from "./sqljs.js";

/**
 * Room left after an image opened in place: an eighth of its size, at least 1 MiB. Only address
 * space until written (the memory is not initialised), and a command's writes rarely need more.
 */
export const inPlaceSpare = (size: number): number => Math.max(1 << 20, Math.ceil(size / 8));

/**
 * The whole file open as `fd`, as an image to load. `spare`: that many bytes of room are left after
 * it in the same (unpooled) memory, for an image opened in place to grow into (MemoryDb.inPlace).
 */
export function readImage(fd: number, size: number, spare = 0): Buffer {
  if (spare <= 0) return readAtSync(fd, 0, size);
  const buf = Buffer.allocUnsafeSlow(size + spare);
  let off = 0;
  while (off < size) {
    const n = fs.readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

export class WorkingCopy {
  private constructor(
    private readonly db: MemoryDb,
    private readonly raw: RawStatements,
  ) {}

  /**
   * A copy holding `img` (a DB file's bytes; changed in place where it is a WAL-mode file).
   * `inPlace`: opened as a file where sql.js holds it, not copied into the WebAssembly heap (for
   * short-lived processes, see MemoryDb.inPlace), with room to grow into up to `room` bytes from
   * its start (readImage's `spare`).
   */
  static load(SQL: SqlJsStatic, memory: WasmMemory, img: Buffer, opts: { maxStatements?: number; inPlace?: boolean; room?: number } = {}): WorkingCopy {
    if (img.length >= 20 && (img[18] === 2 || img[19] === 2)) {
      img[18] = 1; // WAL-mode file (an empty -wal was checked at open): read it in rollback mode
      img[19] = 1;
    }
    const db = opts.inPlace ? MemoryDb.inPlace(SQL, memory, img, opts.room) : MemoryDb.load(SQL, memory, img);
    try {
      db.exec(CONNECTION_PRAGMAS);
      return new WorkingCopy(db, new RawStatements(SQL, memory, db, opts.maxStatements));
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Runs one statement (cached prepared statement; its rows, if any, are ignored). */
  run(sql: string, params?: readonly SqlParam[]): void {
    this.raw.run(sql, params);
  }

  /** The rows of a query (only the first when `first`). */
  rows(sql: string, params: readonly SqlParam[], first = false): RawRow[] {
    return this.raw.rows(sql, params, first);
  }

  /**
   * Applies journal records in one transaction: all of them, or (on a failing statement, which is
   * thrown) none.
   */
  replay(records: readonly (readonly SqlStatement[])[]): void {
    this.run("BEGIN");
    try {
      for (const rec of records) for (const [sql, params] of rec) this.run(sql, params);
      this.run("COMMIT");
    } catch (err) {
      try {
        this.run("ROLLBACK");
      } catch {
        /* keep the original error */
      }
      throw err;
    }
  }

  /** The database as an SQLite file image. */
  export(): Uint8Array {
    return this.db.export();
  }

  /** In place: the file's own bytes after writing `userVersion`, without a copy, where possible (MemoryDb.liveImage). */
  liveImage(userVersion: number): Buffer | undefined {
    return this.db.liveImage(userVersion);
  }

  close(): void {
    this.raw.free();
    this.db.close();
  }
}
