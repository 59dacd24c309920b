/**
 * The on-disk format of the change journal (`X.sqlite.sqljs-journal`).
 *
 *   header  (16 bytes): "PTSJRNL" 0x01 | u32 LE generation | u32 LE crc32 of the first 12 bytes
 *   record  (repeated): u32 LE payload length | u32 LE crc32(payload) | payload
 *   payload           : UTF-8 JSON `[[sql, params], ...]` — the statements of one committed group
 *
 * A record is committed once it is completely on disk with a matching CRC. Anything after the last
 * complete, valid record (a short header, a length running past EOF, a CRC mismatch) is a torn tail:
 * readers stop there and the next writer, holding the lock, truncates it before appending.
 */
import zlib from "node:zlib";
import { StorageError } from "../types.js";

export type SqlParam = string | number | null;
export type SqlStatement = readonly [sql: string, params?: readonly SqlParam[]];

export const HEADER_SIZE = 16;
export const RECORD_OVERHEAD = 8;
/** Sanity bound for one record; a larger length field can only be garbage. */
export const MAX_RECORD = 1 << 30;
const MAGIC = Buffer.from("PTSJRNL\x01", "latin1");

export function crc32(data: Uint8Array): number {
  return zlib.crc32(data) >>> 0;
}

export function encodeHeader(generation: number): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(generation >>> 0, 8);
  b.writeUInt32LE(crc32(b.subarray(0, 12)), 12);
  return b;
}

/** The generation named by a journal header; throws StorageError when the header is not valid. */
export function decodeHeader(b: Buffer, file: string): number {
  if (b.length < HEADER_SIZE || !b.subarray(0, 8).equals(MAGIC) || b.readUInt32LE(12) !== crc32(b.subarray(0, 12))) {
    throw new StorageError(`${file}: not a valid sql.js journal (bad header); move it away only if the database file is known to be complete`);
  }
  return b.readUInt32LE(8);
}

export function encodeRecord(statements: readonly SqlStatement[]): Buffer {
  const payload = Buffer.from(JSON.stringify(statements), "utf8");
  if (payload.length > MAX_RECORD) throw new StorageError(`journal record too large (${payload.length} bytes)`);
  const b = Buffer.allocUnsafe(RECORD_OVERHEAD + payload.length);
  b.writeUInt32LE(payload.length, 0);
  b.writeUInt32LE(crc32(payload), 4);
  payload.copy(b, RECORD_OVERHEAD);
  return b;
}

/**
 * Encodes records into one reused buffer: a commit's record is written and forgotten at once, and
 * a fresh buffer per commit (external memory) makes V8 run full collections far more often.
 * The returned view is valid until the next encode().
 */
export class RecordEncoder {
  private scratch = Buffer.allocUnsafe(64 * 1024);

  encode(statements: readonly SqlStatement[]): Buffer {
    const json = JSON.stringify(statements);
    const worst = RECORD_OVERHEAD + 3 * json.length; // UTF-16 unit → at most 3 UTF-8 bytes
    if (worst > this.scratch.length) {
      if (worst - RECORD_OVERHEAD > MAX_RECORD) return encodeRecord(statements); // checks the real size
      this.scratch = Buffer.allocUnsafe(worst);
    }
    const len = this.scratch.write(json, RECORD_OVERHEAD, "utf8");
    const payload = this.scratch.subarray(RECORD_OVERHEAD, RECORD_OVERHEAD + len);
    this.scratch.writeUInt32LE(len, 0);
    this.scratch.writeUInt32LE(crc32(payload), 4);
    return this.scratch.subarray(0, RECORD_OVERHEAD + len);
  }

  /** Drops an unusually large scratch buffer (after a huge record) so it is not kept for good. */
  trim(): void {
    if (this.scratch.length > 1024 * 1024) this.scratch = Buffer.allocUnsafe(64 * 1024);
  }
}

export interface ParsedRecords {
  /** Statement lists of the complete records, in order. */
  records: SqlStatement[][];
  /** Bytes consumed by complete records (relative to the start of `buf`). */
  validLength: number;
}

/** Parses complete records from `buf` (which starts at a record boundary); stops at a torn tail. */
export function parseRecords(buf: Buffer, file: string, baseOffset: number): ParsedRecords {
  const records: SqlStatement[][] = [];
  let pos = 0;
  while (buf.length - pos >= RECORD_OVERHEAD) {
    const len = buf.readUInt32LE(pos);
    if (len > MAX_RECORD || len > buf.length - pos - RECORD_OVERHEAD) break;
    const payload = buf.subarray(pos + RECORD_OVERHEAD, pos + RECORD_OVERHEAD + len);
    if (crc32(payload) !== buf.readUInt32LE(pos + 4)) break;
    let stmts: unknown;
    try {
      stmts = JSON.parse(payload.toString("utf8"));
    } catch {
      stmts = undefined;
    }
    if (!Array.isArray(stmts)) {
      throw new StorageError(`${file}: journal record at offset ${baseOffset + pos} has a valid checksum but is not a statement list`);
    }
    records.push(stmts as SqlStatement[]);
    pos += RECORD_OVERHEAD + len;
  }
  return { records, validLength: pos };
}
