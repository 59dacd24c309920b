/**
 * Prepared statements driven through sql.js's exported SQLite C functions.
 *
 * Why not sql.js's `Statement`: it copies every string parameter into WebAssembly memory one
 * character at a time in JavaScript, through a generic call wrapper, and mallocs and frees each one
 * (~3 µs for a 300-byte JSON value, ~6.5 µs for the six parameters of an insert), and decodes
 * result text the same way. Here parameters are encoded with Buffer.write straight into one reused
 * scratch area and bound as SQLITE_STATIC, and result text is decoded with Buffer.toString.
 *
 * Semantics match sql.js's bind/step/getAsObject: numbers that are 32-bit integers bind as
 * INTEGER, others as REAL; null binds NULL; INTEGER and REAL columns read as numbers, TEXT as
 * strings, BLOB as Uint8Array, NULL as null; errors carry sqlite3_errmsg's text.
 */
import type { Database, SqlJsStatic, SqlValue } from "sql.js";
import type { WasmMemory } from "./sqljs.js";

const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
const SQLITE_INTEGER = 1;
const SQLITE_FLOAT = 2;
const SQLITE_TEXT = 3;
const SQLITE_BLOB = 4;

/** The C functions sql.js exports on its module object (raw WebAssembly exports). */
interface SqliteExports {
  _malloc(n: number): number;
  _free(p: number): void;
  _sqlite3_prepare_v2(db: number, sql: number, nBytes: number, ppStmt: number, pzTail: number): number;
  _sqlite3_bind_text(stmt: number, i: number, p: number, n: number, destructor: number): number;
  _sqlite3_bind_blob(stmt: number, i: number, p: number, n: number, destructor: number): number;
  _sqlite3_bind_int(stmt: number, i: number, v: number): number;
  _sqlite3_bind_double(stmt: number, i: number, v: number): number;
  _sqlite3_step(stmt: number): number;
  _sqlite3_reset(stmt: number): number;
  _sqlite3_clear_bindings(stmt: number): number;
  _sqlite3_finalize(stmt: number): number;
  _sqlite3_column_count(stmt: number): number;
  _sqlite3_column_name(stmt: number, i: number): number;
  _sqlite3_column_type(stmt: number, i: number): number;
  _sqlite3_column_double(stmt: number, i: number): number;
  _sqlite3_column_text(stmt: number, i: number): number;
  _sqlite3_column_blob(stmt: number, i: number): number;
  _sqlite3_column_bytes(stmt: number, i: number): number;
  _sqlite3_errmsg(db: number): number;
}

const REQUIRED: (keyof SqliteExports)[] = [
  "_malloc", "_free", "_sqlite3_prepare_v2", "_sqlite3_bind_text", "_sqlite3_bind_blob", "_sqlite3_bind_int",
  "_sqlite3_bind_double", "_sqlite3_step", "_sqlite3_reset", "_sqlite3_clear_bindings", "_sqlite3_finalize",
  "_sqlite3_column_count", "_sqlite3_column_name", "_sqlite3_column_type", "_sqlite3_column_double",
  "_sqlite3_column_text", "_sqlite3_column_blob", "_sqlite3_column_bytes", "_sqlite3_errmsg",
];

export type RawParam = string | number | null;
export type RawRow = Record<string, SqlValue>;

interface Prepared {
  ptr: number;
  /** Column names, read once (null until the first row is read). */
  names: string[] | null;
}

const SCRATCH_MIN = 4096;
/** A scratch area grown past this by one huge parameter is given back after use. */
const SCRATCH_KEEP = 1 << 20;

/** The connection handle (sqlite3*) of a sql.js Database (not part of its typed API). */
export function handleOf(db: Database): number {
  const handle = (db as unknown as { db?: unknown }).db;
  if (typeof handle !== "number" || handle === 0) throw new Error("sql.js Database has no open handle (unsupported sql.js version?)");
  return handle;
}

/**
 * The prepared statements of one connection (a sql.js Database, or a MemoryDb's handle). Finalize
 * them (free()) before closing it.
 */
export class RawStatements {
  private readonly api: SqliteExports;
  private readonly dbPtr: number;
  private readonly cache = new Map<string, Prepared>();
  private heap: Buffer;
  private scratch = 0;
  private scratchSize = 0;
  /** 4 bytes for sqlite3_prepare_v2's statement out-parameter. */
  private slot = 0;

  constructor(
    SQL: SqlJsStatic,
    private readonly memory: WasmMemory,
    db: Database | { readonly handle: number },
    private readonly maxStatements = 256,
  ) {
    const api = SQL as unknown as Partial<SqliteExports>;
    const missing = REQUIRED.filter((f) => typeof api[f] !== "function");
    if (missing.length) throw new Error(`sql.js does not export ${missing.join(", ")} (unsupported sql.js version)`);
    this.api = api as SqliteExports;
    this.dbPtr = "handle" in db ? db.handle : handleOf(db);
    this.heap = Buffer.from(memory.buffer);
    this.slot = this.api._malloc(4);
  }

  /** Runs a statement once (its rows, if any, are ignored). */
  run(sql: string, params?: readonly RawParam[]): void {
    const st = this.prepare(sql);
    try {
      if (params && params.length) this.bind(st.ptr, params);
      const rc = this.api._sqlite3_step(st.ptr);
      if (rc !== SQLITE_ROW && rc !== SQLITE_DONE) throw this.error();
    } finally {
      this.finish(st.ptr);
    }
  }

  /** The rows of a query as objects keyed by column name; with `first`, at most one. */
  rows(sql: string, params: readonly RawParam[], first = false): RawRow[] {
    const st = this.prepare(sql);
    const out: RawRow[] = [];
    try {
      if (params.length) this.bind(st.ptr, params);
      for (;;) {
        const rc = this.api._sqlite3_step(st.ptr);
        if (rc === SQLITE_DONE) break;
        if (rc !== SQLITE_ROW) throw this.error();
        out.push(this.row(st));
        if (first) break;
      }
    } finally {
      this.finish(st.ptr);
    }
    return out;
  }

  /** Finalizes every statement and frees the scratch memory; the object is unusable after. */
  free(): void {
    this.clear();
    if (this.scratch) this.api._free(this.scratch);
    if (this.slot) this.api._free(this.slot);
    this.scratch = this.scratchSize = this.slot = 0;
  }

  /** Finalizes every cached statement (they are prepared again on next use). */
  clear(): void {
    for (const st of this.cache.values()) this.api._sqlite3_finalize(st.ptr);
    this.cache.clear();
  }

  // ----------------------------------------------------------------------------------------------

  private prepare(sql: string): Prepared {
    const hit = this.cache.get(sql);
    if (hit) return hit;
    if (this.cache.size >= this.maxStatements) this.clear();
    const n = this.ensureScratch(3 * sql.length + 1);
    const heap = this.view();
    const len = heap.write(sql, this.scratch, n - 1, "utf8");
    heap[this.scratch + len] = 0;
    const rc = this.api._sqlite3_prepare_v2(this.dbPtr, this.scratch, len, this.slot, 0);
    if (rc !== 0) throw this.error();
    const ptr = this.view().readInt32LE(this.slot);
    if (ptr === 0) throw new Error("Nothing to prepare");
    const st: Prepared = { ptr, names: null };
    this.cache.set(sql, st);
    return st;
  }

  private bind(stmt: number, params: readonly RawParam[]): void {
    let need = 0;
    for (const p of params) {
      if (typeof p === "string") need += 3 * p.length;
      else if ((p as unknown) instanceof Uint8Array) need += (p as unknown as Uint8Array).length;
    }
    this.ensureScratch(need || 1); // never a NULL pointer for an empty string
    const heap = this.view();
    let at = this.scratch;
    for (let i = 0; i < params.length; i++) {
      const p = params[i] as unknown;
      let rc: number;
      if (typeof p === "string") {
        const len = p.length ? heap.write(p, at, "utf8") : 0;
        rc = this.api._sqlite3_bind_text(stmt, i + 1, at, len, 0); // SQLITE_STATIC: valid until reset
        at += len;
      } else if (typeof p === "number") {
        rc = p === (p | 0) ? this.api._sqlite3_bind_int(stmt, i + 1, p) : this.api._sqlite3_bind_double(stmt, i + 1, p);
      } else if (typeof p === "boolean") {
        rc = this.api._sqlite3_bind_int(stmt, i + 1, p ? 1 : 0);
      } else if (p === null || p === undefined) {
        rc = this.api._sqlite3_bind_blob(stmt, i + 1, 0, 0, 0);
      } else if (p instanceof Uint8Array) {
        heap.set(p, at);
        rc = this.api._sqlite3_bind_blob(stmt, i + 1, at, p.length, 0);
        at += p.length;
      } else {
        throw new Error(`Wrong API use : tried to bind a value of an unknown type (${String(p)}).`);
      }
      if (rc !== 0) throw this.error();
    }
  }

  private row(st: Prepared): RawRow {
    const api = this.api;
    const ptr = st.ptr;
    const n = api._sqlite3_column_count(ptr);
    if (!st.names) {
      st.names = [];
      for (let i = 0; i < n; i++) st.names.push(this.cString(api._sqlite3_column_name(ptr, i)));
    }
    const out: RawRow = {};
    for (let i = 0; i < n; i++) {
      let v: SqlValue;
      switch (api._sqlite3_column_type(ptr, i)) {
        case SQLITE_INTEGER:
        case SQLITE_FLOAT:
          v = api._sqlite3_column_double(ptr, i);
          break;
        case SQLITE_TEXT: {
          const p = api._sqlite3_column_text(ptr, i);
          const len = api._sqlite3_column_bytes(ptr, i);
          v = len ? this.view().toString("utf8", p, p + len) : "";
          break;
        }
        case SQLITE_BLOB: {
          const p = api._sqlite3_column_blob(ptr, i);
          const len = api._sqlite3_column_bytes(ptr, i);
          v = new Uint8Array(len); // a copy: the column memory is SQLite's
          if (len) v.set(this.view().subarray(p, p + len));
          break;
        }
        default:
          v = null;
      }
      out[st.names[i]!] = v;
    }
    return out;
  }

  /** reset + clear_bindings: no binding may keep pointing into the scratch area. */
  private finish(stmt: number): void {
    this.api._sqlite3_reset(stmt);
    this.api._sqlite3_clear_bindings(stmt);
    if (this.scratchSize > SCRATCH_KEEP) {
      this.api._free(this.scratch);
      this.scratch = this.scratchSize = 0;
    }
  }

  private ensureScratch(n: number): number {
    if (n > this.scratchSize) {
      if (this.scratch) this.api._free(this.scratch);
      const size = Math.max(SCRATCH_MIN, n);
      this.scratch = this.api._malloc(size);
      if (!this.scratch) {
        this.scratchSize = 0;
        throw new Error(`out of memory (${size} bytes for statement parameters)`);
      }
      this.scratchSize = size;
    }
    return this.scratchSize;
  }

  /** A Buffer over the current WebAssembly memory (growing the memory replaces its buffer). */
  private view(): Buffer {
    if (this.heap.buffer !== this.memory.buffer) this.heap = Buffer.from(this.memory.buffer);
    return this.heap;
  }

  private cString(p: number): string {
    const heap = this.view();
    const end = heap.indexOf(0, p);
    return heap.toString("utf8", p, end < 0 ? heap.length : end);
  }

  private error(): Error {
    return new Error(this.cString(this.api._sqlite3_errmsg(this.dbPtr)));
  }
}
