/**
 * The on-disk format of the change journal (`X.sqlite.sqljs-journal`).
 *
 *   header  (16 bytes): "PTSJRNL" 0x01 | u32 LE generation | u32 LE crc32 of the first 12 bytes
 *   record  (repeated): u32 LE payload length | u32 LE crc32(payload) | payload
 *   payload           : UTF-8 JSON `[[sql, params], ...]` — the statements of one committed group
 *
 * A record is committed once it is completely on disk with a matching CRC. Records are only ever
 * appended after complete, valid ones (the writer holding the lock truncates anything else first),
 * so a crash mid-append can only damage the LAST record: a short header, a length running past EOF,
 * a CRC mismatch — a torn tail, which readers ignore and the next writer cuts off.
 *
 * A bad record with a valid record anywhere after it is therefore not a torn tail but damage (a
 * flipped bit, a bad sector, an edit): the records after it were committed and acknowledged, and
 * cutting at the damage would silently drop them. parseRecords() then throws JournalDamagedError,
 * every process refuses the database, and `prosodyctl storage recover-journal` salvages what is
 * intact. "Valid record after it" means: some later byte position where a length, a matching CRC32
 * and a payload that parses as a JSON statement list all line up (see findNextRecord). False
 * positives would need a torn tail whose leftover bytes happen to hold such a record: the bytes of
 * a torn append are a prefix of one record (JSON text, whose 4-byte groups read as lengths of over
 * 500 MB, so they never pass the length check), zeros, or stale blocks of the same file after a
 * power loss; each candidate must then also match a CRC32 (1 in 2^32) and parse as a statement list.
 * The one real case is a power loss that persisted a later, never-acknowledged record but not an
 * earlier one (both unacknowledged: the later record's fdatasync would have flushed both); then the
 * refusal is conservative and recovery applies both intact parts.
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

/** The smallest payload we write: "[]". A length below it is never one of our records. */
const MIN_PAYLOAD = 2;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * A bad record followed by intact ones: not a torn tail. The message names the file, the byte
 * offset and the count of intact records after it, and the recovery command; nothing was changed.
 */
export class JournalDamagedError extends StorageError {
  override name = "JournalDamagedError";
  constructor(
    readonly journalFile: string,
    /** Byte offset (from the start of the file) of the first damaged record. */
    readonly offset: number,
    /** Intact records found after the damage. */
    readonly intactAfter: number,
  ) {
    super(journalDamagedMessage(journalFile, offset, intactAfter));
  }
}

/** The database file a journal belongs to (`X.sqlite.sqljs-journal` → `X.sqlite`). */
export function dbFileOfJournal(journalFile: string): string {
  return journalFile.replace(/\.sqljs-journal$/, "");
}

/** One line, stable for scripts: "journal damaged: <journal>: damaged record at byte <N>, <M> intact record(s) after it; …". */
export function journalDamagedMessage(journalFile: string, offset: number, intactAfter: number): string {
  return (
    `journal damaged: ${journalFile}: damaged record at byte ${offset}, ${intactAfter} intact record(s) after it; ` +
    `refusing to use ${dbFileOfJournal(journalFile)} (no file was changed). ` +
    `Stop every process using it, then run: prosodyctl [--config FILE] storage recover-journal ${dbFileOfJournal(journalFile)}`
  );
}

/** Whether a parsed payload is a statement list as we write them: [[sql, params?], ...]. */
export function isStatementList(v: unknown): v is SqlStatement[] {
  if (!Array.isArray(v)) return false;
  for (const s of v) {
    if (!Array.isArray(s) || typeof s[0] !== "string" || s.length > 2) return false;
    if (s.length === 2 && !Array.isArray(s[1])) return false;
  }
  return true;
}

/**
 * The complete record starting at `pos`, or undefined when none does (too short, a length past the
 * end, a CRC mismatch, or a payload that is not a statement list).
 */
function recordAt(buf: Buffer, pos: number): { statements: SqlStatement[]; end: number } | undefined {
  if (buf.length - pos < RECORD_OVERHEAD + MIN_PAYLOAD) return undefined;
  const len = buf.readUInt32LE(pos);
  if (len < MIN_PAYLOAD || len > MAX_RECORD || len > buf.length - pos - RECORD_OVERHEAD) return undefined;
  const start = pos + RECORD_OVERHEAD;
  // Cheap filters before the CRC: every payload we write is a JSON array.
  if (buf[start] !== OPEN_BRACKET || buf[start + len - 1] !== CLOSE_BRACKET) return undefined;
  const payload = buf.subarray(start, start + len);
  if (crc32(payload) !== buf.readUInt32LE(pos + 4)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(payload.toString("utf8"));
  } catch {
    return undefined;
  }
  return isStatementList(v) ? { statements: v, end: start + len } : undefined;
}

/** Whether a record with a matching CRC (whatever its payload) starts at `pos`. */
function checksummedAt(buf: Buffer, pos: number): boolean {
  if (buf.length - pos < RECORD_OVERHEAD) return false;
  const len = buf.readUInt32LE(pos);
  if (len > MAX_RECORD || len > buf.length - pos - RECORD_OVERHEAD) return false;
  return crc32(buf.subarray(pos + RECORD_OVERHEAD, pos + RECORD_OVERHEAD + len)) === buf.readUInt32LE(pos + 4) && len > 0;
}

/** The first position after `from` where a complete, valid record begins, or -1. */
function findNextRecord(buf: Buffer, from: number): number {
  for (let p = from; p + RECORD_OVERHEAD + MIN_PAYLOAD <= buf.length; p++) {
    if (recordAt(buf, p)) return p;
  }
  return -1;
}

/** Everything readable in a journal's records area: intact records and the damaged stretches between. */
export interface JournalScan {
  records: { offset: number; length: number; statements: SqlStatement[] }[];
  /** Stretches that are not intact records (offset, byte count); a last one may be a torn tail. */
  damaged: { offset: number; length: number }[];
}

/**
 * Reads every intact record of `buf` (which starts at a record boundary, `baseOffset` in the file),
 * resynchronising after damage: for recovery, and to count what follows a damaged record.
 */
export function scanRecords(buf: Buffer, baseOffset: number): JournalScan {
  const scan: JournalScan = { records: [], damaged: [] };
  let pos = 0;
  while (pos < buf.length) {
    const r = recordAt(buf, pos);
    if (r) {
      scan.records.push({ offset: baseOffset + pos, length: r.end - pos, statements: r.statements });
      pos = r.end;
      continue;
    }
    const next = findNextRecord(buf, pos + 1);
    const end = next < 0 ? buf.length : next;
    scan.damaged.push({ offset: baseOffset + pos, length: end - pos });
    pos = end;
  }
  return scan;
}

export interface ParsedRecords {
  /** Statement lists of the complete records, in order. */
  records: SqlStatement[][];
  /** Bytes consumed by complete records (relative to the start of `buf`). */
  validLength: number;
}

/**
 * Parses complete records from `buf` (which starts at a record boundary, `baseOffset` in `file`).
 * Stops at a torn tail: a bad record with no intact record anywhere after it. A bad record with
 * intact records after it throws JournalDamagedError (see the header comment).
 */
export function parseRecords(buf: Buffer, file: string, baseOffset: number): ParsedRecords {
  const records: SqlStatement[][] = [];
  let pos = 0;
  while (pos < buf.length) {
    const r = recordAt(buf, pos);
    if (!r) break;
    records.push(r.statements);
    pos = r.end;
  }
  // A torn append never has a matching CRC; a checksummed record that is not a statement list is
  // damage wherever it is.
  if (pos < buf.length && (checksummedAt(buf, pos) || findNextRecord(buf, pos + 1) >= 0)) {
    const after = scanRecords(buf.subarray(pos), baseOffset + pos).records.length;
    throw new JournalDamagedError(file, baseOffset + pos, after);
  }
  return { records, validLength: pos };
}
