/**
 * A working copy held as an SQLite in-memory database (`:memory:`), opened through the C functions
 * sql.js exports.
 *
 * Why not a sql.js `Database`: that keeps the database as a file in Emscripten's MEMFS, a JavaScript
 * array that grows by 12.5 % at a time and is copied whole each time. A store growing steadily (the
 * invites bench: 10k invites/s) froze the event loop for 50–170 ms every 12.5 % of growth once past
 * the room it was loaded with. An in-memory database keeps its pages in SQLite's own heap inside
 * the WebAssembly memory, which grows in place; a transaction's pages never leave it. Measured
 * (100k invites, then 200k more, DELETE + INSERT + SELECT per invite): 13.1 µs per invite against
 * 13.8, slowest transaction 6.5 ms against 57 ms.
 *
 * The image goes in and out with SQLite's online backup API, through a temporary sql.js Database
 * that holds it as a file. The price: the database must fit in the WebAssembly memory (at most
 * 2 GiB with sql.js's build, shared with everything else SQLite allocates).
 *
 * `MemoryDb.inPlace` is the other way, for short-lived processes (prosodyctl): the image opened
 * where sql.js puts it, as a file in MEMFS, with no copy into the WebAssembly heap. SQLite then
 * reads only the pages a command touches (through its page cache, bounded), and the backup copy
 * of every page (~0.3 s and the database's size in WebAssembly memory that is never given back,
 * at 100k invites) is skipped. Writes grow the MEMFS file by copying it (see above) once past the
 * room given with the image: fine for a handful of commits, not for a server. Within that room the
 * file stays in the buffer we gave, so folding the journal on exit writes that buffer as it is
 * (liveImage) instead of a second, exported copy of the database.
 */
import type { Database, SqlJsStatic } from "sql.js";
import { RawStatements, handleOf } from "./raw-sqlite.js";
import { releaseBuffer } from "./fsutil.js";
import type { WasmMemory } from "./sqljs.js";

/** Page 1 of a blank database, per page size (see MemoryDb.blankFile). */
const blankPages = new Map<number, Uint8Array>();

/** Where SQLite's header keeps PRAGMA user_version. */
const USER_VERSION_AT = 60;
const SQLITE_OK = 0;
const SQLITE_DONE = 101;

interface BackupExports {
  _malloc(n: number): number;
  _free(p: number): void;
  _sqlite3_open(filename: number, ppDb: number): number;
  _sqlite3_close_v2(db: number): number;
  _sqlite3_exec(db: number, sql: number, cb: number, arg: number, errmsg: number): number;
  _sqlite3_errmsg(db: number): number;
  _sqlite3_backup_init(dest: number, destName: number, src: number, srcName: number): number;
  _sqlite3_backup_step(b: number, pages: number): number;
  _sqlite3_backup_finish(b: number): number;
}

const REQUIRED: (keyof BackupExports)[] = [
  "_malloc", "_free", "_sqlite3_open", "_sqlite3_close_v2", "_sqlite3_exec", "_sqlite3_errmsg",
  "_sqlite3_backup_init", "_sqlite3_backup_step", "_sqlite3_backup_finish",
];

export class MemoryDb {
  private open = true;

  private constructor(
    private readonly SQL: SqlJsStatic,
    private readonly api: BackupExports,
    private readonly memory: WasmMemory,
    /** The sqlite3* of the database. */
    readonly handle: number,
    /** inPlace: the sql.js Database whose MEMFS file this is (closed with it). */
    private readonly file?: Database,
    /** inPlace: the memory given to MEMFS as the file's contents, room to grow included. */
    private readonly room?: Buffer,
  ) {}

  /** How many databases were copied into the WebAssembly heap (load with an image) in this thread (tests). */
  static copiesIn = 0;
  /** How many images liveImage() handed out without a copy in this thread (tests). */
  static liveImages = 0;

  /** A new in-memory database holding `image` (an SQLite file's bytes; empty = a new database). */
  static load(SQL: SqlJsStatic, memory: WasmMemory, image: Uint8Array): MemoryDb {
    const a = exportsOf(SQL);
    const slot = a._malloc(4);
    let handle = 0;
    try {
      const rc = withCString(a, memory, ":memory:", (name) => a._sqlite3_open(name, slot));
      handle = new Int32Array(memory.buffer, slot, 1)[0];
      if (rc !== SQLITE_OK) throw new Error(`cannot open an in-memory database (SQLite error ${rc})`);
    } catch (err) {
      if (handle) a._sqlite3_close_v2(handle);
      throw err;
    } finally {
      a._free(slot);
    }
    const db = new MemoryDb(SQL, a, memory, handle);
    if (image.length) {
      let file: Database | undefined;
      try {
        file = new SQL.Database(image);
        MemoryDb.copiesIn++;
        db.copy(handleOf(file), handle);
      } catch (err) {
        db.close();
        throw err;
      } finally {
        file?.close();
      }
    }
    return db;
  }

  /**
   * `image` opened where it is: a file in sql.js's MEMFS (see the header), not copied into the heap.
   * `room`: bytes from the image's start that are ours to use (its buffer's unpooled memory past
   * it, readImage's `spare`): the file may grow into them in place.
   *
   * How: MEMFS takes the data of a file's first write as `data.slice(0, data.length)` (a view, for
   * a Buffer) and grows a file by copying it only once it outgrows that array's length. So the
   * image is handed over as a Buffer whose `slice` gives the whole room instead: the file keeps
   * its length (MEMFS's own count of bytes used) and has the room as its capacity. If MEMFS ever
   * takes its data differently, the room is simply unused: liveImage() checks where writes land.
   */
  static inPlace(SQL: SqlJsStatic, memory: WasmMemory, image: Buffer, room = image.length): MemoryDb {
    const a = exportsOf(SQL);
    let whole: Buffer | undefined;
    let data = image;
    if (image.length > 0 && room > image.length) {
      const all = Buffer.from(image.buffer, image.byteOffset, room);
      whole = all;
      data = Buffer.from(image.buffer, image.byteOffset, image.length);
      const plain = data.slice.bind(data);
      Object.defineProperty(data, "slice", {
        value: (start?: number, end?: number) => (start === 0 && end === image.length ? all : plain(start, end)),
      });
    }
    const file = new SQL.Database(data);
    try {
      return new MemoryDb(SQL, a, memory, handleOf(file), file, whole ?? image);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * In place only: the database file's bytes where MEMFS keeps them, without a copy, after writing
   * `userVersion` (PRAGMA user_version, header bytes 60..63; call outside a transaction); undefined
   * where they are not in the memory given to inPlace any more (MEMFS moved a file that outgrew
   * its room into a new array, which we cannot see; the caller then exports a copy).
   *
   * Why the write: it proves where the file is. MEMFS writes into the file's current array and
   * never moves a file back into an earlier one, so if this last write of page 1 landed in our
   * memory, every earlier write did too and the memory holds the whole, committed file (SQLite
   * writes every dirty page at COMMIT). The bytes are the live file: valid until the next write.
   * Its header may be changed in place (db-image.ts stamps it): SQLite keeps page 1 in its own
   * cache and rewrites those fields at its next commit.
   */
  liveImage(userVersion: number): Buffer | undefined {
    const room = this.file ? this.room : undefined;
    if (!room || room.length < 100 || room.readUInt32BE(USER_VERSION_AT) === userVersion >>> 0) return undefined;
    this.exec(`PRAGMA user_version=${userVersion | 0}`);
    if (room.readUInt32BE(USER_VERSION_AT) !== userVersion >>> 0) return undefined;
    const size = this.pragmaInt("page_count") * this.pragmaInt("page_size");
    if (size <= 0 || size > room.length) return undefined;
    MemoryDb.liveImages++;
    return room.subarray(0, size);
  }

  /** Runs one or more statements that return no rows (pragmas). */
  exec(sql: string): void {
    const rc = withCString(this.api, this.memory, sql, (p) => this.api._sqlite3_exec(this.handle, p, 0, 0, 0));
    if (rc !== SQLITE_OK) throw new Error(this.errmsg(this.handle));
  }

  /**
   * The database as an SQLite file's bytes (what sql.js's `export()` returns). The file it is copied
   * into starts at its final size (a blank one-page database followed by zeros, which SQLite
   * ignores), so MEMFS never grows it, and has no rollback journal of its own to write: ~100 ms for
   * 40 MB instead of ~400 ms. That file is a Node Buffer, which MEMFS keeps as it is (it takes a
   * first write's data with `slice()`, a view for a Buffer), so the pages land in the very buffer
   * returned: one copy of the database in JavaScript memory, not two (checked: else sql.js's export).
   */
  export(): Uint8Array {
    // In place: sql.js's own export, one backup straight into the array it returns (outside a
    // transaction, as every caller is).
    if (this.file) return this.file.export();
    const pageSize = this.pragmaInt("page_size");
    const pages = this.pragmaInt("page_count");
    if (pages <= 1) return this.exportThroughSqljs(pages, pageSize);
    const out = this.blankFile(pageSize, pages * pageSize);
    const file = new this.SQL.Database(out);
    let copied: Uint8Array | undefined;
    try {
      file.exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=1");
      this.copy(this.handle, handleOf(file));
      // The header's page count (bytes 28..31) says whether the backup wrote into `out` itself.
      if (out.readUInt32BE(28) === pages) return out;
      copied = file.export();
      return copied;
    } finally {
      file.close();
      if (copied) releaseBuffer(out); // not the image: garbage of the store's size
    }
  }

  private exportThroughSqljs(pages: number, pageSize: number): Uint8Array {
    const file = pages > 0 ? new this.SQL.Database(this.blankFile(pageSize, pages * pageSize)) : new this.SQL.Database();
    try {
      file.exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=1");
      this.copy(this.handle, handleOf(file));
      return file.export();
    } finally {
      file.close();
    }
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.raw?.free();
    this.raw = undefined;
    if (this.file) this.file.close(); // closes the handle and removes the MEMFS file
    else this.api._sqlite3_close_v2(this.handle);
  }

  private raw: RawStatements | undefined;

  private pragmaInt(name: "page_size" | "page_count"): number {
    this.raw ??= new RawStatements(this.SQL, this.memory, this, 4);
    return Number(this.raw.rows(`PRAGMA ${name}`, [], true)[0]?.[name] ?? 0);
  }

  /** A valid one-page database of this page size, padded with zeros to `size` bytes. */
  private blankFile(pageSize: number, size: number): Buffer {
    let page = blankPages.get(pageSize);
    if (!page) {
      const db = new this.SQL.Database();
      try {
        db.exec(`PRAGMA page_size=${pageSize}; PRAGMA user_version=1`); // writes page 1
        page = db.export();
      } finally {
        db.close();
      }
      blankPages.set(pageSize, page);
    }
    const out = Buffer.alloc(Math.max(size, page.length));
    out.set(page);
    return out;
  }

  /** Copies every page of database `main` of `src` over database `main` of `dest`. */
  private copy(src: number, dest: number): void {
    const a = this.api;
    const b = withCString(a, this.memory, "main", (main) => a._sqlite3_backup_init(dest, main, src, main));
    if (!b) throw new Error(this.errmsg(dest));
    const step = a._sqlite3_backup_step(b, -1);
    const rc = a._sqlite3_backup_finish(b);
    if (step !== SQLITE_DONE || rc !== SQLITE_OK) throw new Error(this.errmsg(dest));
  }

  private errmsg(db: number): string {
    const p = this.api._sqlite3_errmsg(db);
    const heap = new Uint8Array(this.memory.buffer);
    const end = heap.indexOf(0, p);
    return Buffer.from(heap.buffer, p, (end < 0 ? heap.length : end) - p).toString("utf8");
  }
}

function exportsOf(SQL: SqlJsStatic): BackupExports {
  const api = SQL as unknown as Partial<BackupExports>;
  const missing = REQUIRED.filter((f) => typeof api[f] !== "function");
  if (missing.length) throw new Error(`sql.js does not export ${missing.join(", ")} (unsupported sql.js version)`);
  return api as BackupExports;
}

function withCString<T>(api: BackupExports, memory: WasmMemory, s: string, fn: (p: number) => T): T {
  const bytes = Buffer.from(s + "\0", "utf8");
  const p = api._malloc(bytes.length);
  try {
    new Uint8Array(memory.buffer).set(bytes, p);
    return fn(p);
  } finally {
    api._free(p);
  }
}
