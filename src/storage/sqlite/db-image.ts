/**
 * Facts about the DB file images this store writes, shared by the main thread (durable-db.ts) and
 * the compaction worker (snapshot-worker.ts).
 */
import zlib from "node:zlib";
import { StorageError } from "../types.js";

export const SQLITE_MAGIC = Buffer.from("SQLite format 3\0", "latin1");

/** Where an image records the generation it was compacted at: SQLite's user_version (bytes 60..63). */
export const GEN_AT = 60;
/**
 * Where a background compaction records how much of the previous generation's journal its image
 * holds: SQLite's `application_id` header field (bytes 68..71), 0 = all of it / not applicable.
 */
export const BASE_OFFSET_AT = 68;

/** The generation after `gen` (32 bits, never 0). */
export const nextGen = (gen: number) => ((gen + 1) >>> 0) || 1;

/** The generation a DB file image was compacted at (its user_version); 0 for an empty file. */
export function dbGeneration(img: Buffer, file: string): number {
  if (img.length === 0) return 0;
  if (img.length < 100 || !img.subarray(0, 16).equals(SQLITE_MAGIC)) throw new StorageError(`${file} is not an SQLite 3 database`);
  return img.readUInt32BE(GEN_AT);
}

/** How much of the previous generation's journal a background compaction put in `img` (0: n/a). */
export function dbBaseOffset(img: Buffer): number {
  return img.length >= BASE_OFFSET_AT + 4 ? img.readUInt32BE(BASE_OFFSET_AT) : 0;
}

/**
 * Where an image records its own checksum: SQLite's file change counter (bytes 24..27). It holds the
 * CRC32 of the whole image with these four bytes taken as zero. Why: a journal's records may only
 * be replayed on the very image they continue; a file changed by anything else (real Prosody,
 * sqlite3, an edit, a restore) no longer matches its checksum. Real SQLite increments this counter
 * on every write transaction in rollback-journal mode, and any change to any page changes the CRC
 * (in WAL mode too, once checkpointed into the file; a non-empty -wal is refused at open anyway).
 * The counter is only a cache-validity hint for SQLite; the in-header page count (valid only while
 * bytes 92..95 equal the counter) is then ignored and the file size used, which is always right.
 */
export const SELF_CRC_AT = 24;
const ZERO4 = Buffer.alloc(4);

/** CRC32 of an image with its checksum field taken as zero. */
export function imageChecksum(img: Uint8Array): number {
  const b = Buffer.from(img.buffer, img.byteOffset, img.byteLength);
  let c = zlib.crc32(b.subarray(0, SELF_CRC_AT));
  c = zlib.crc32(ZERO4, c);
  return zlib.crc32(b.subarray(SELF_CRC_AT + 4), c) >>> 0;
}

/** Whether `img` is byte for byte an image this host wrote (see SELF_CRC_AT). */
export function isOwnImage(img: Uint8Array): boolean {
  if (img.length < 100) return false;
  const b = Buffer.from(img.buffer, img.byteOffset, img.byteLength);
  return b.readUInt32BE(SELF_CRC_AT) === imageChecksum(b);
}

/** Writes the generation, journal base and own checksum into an exported image's header. */
export function stampImage(img: Uint8Array, gen: number, base: number): Buffer {
  const buf = stampFields(img, gen, base);
  stampChecksum(buf);
  return buf;
}

/** stampImage's first half: the generation and journal base (the checksum must follow, stampChecksum). */
export function stampFields(img: Uint8Array, gen: number, base: number): Buffer {
  const buf = Buffer.from(img.buffer, img.byteOffset, img.byteLength);
  buf.writeUInt32BE(gen >>> 0, GEN_AT);
  buf.writeUInt32BE(base >>> 0, BASE_OFFSET_AT);
  return buf;
}

/** stampImage's second half: the image's own checksum, once every other byte is final. */
export function stampChecksum(buf: Buffer): void {
  buf.writeUInt32BE(imageChecksum(buf), SELF_CRC_AT);
}

/** The bytes of an image's header that stampImage writes into (all of them before this offset). */
export const STAMPED_HEADER_BYTES = 100;

/**
 * Connection settings of a working copy (not stored in the file). Nobody else opens this in-memory
 * copy, so: exclusive locking (no hot-journal probe / header re-read per transaction), SQLite's own
 * rollback journal in RAM (ROLLBACK and SAVEPOINT still work), no syncs.
 */
export const CONNECTION_PRAGMAS = "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=MEMORY; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY";

/**
 * Images are written in pieces of this size, each flushed (fdatasync) before the next: written in
 * one go, a compaction's tens of MB reach the disk in one burst at its final fsync, and every
 * journal fdatasync queued behind that burst (each request waits for one) took 10–20 ms instead of
 * 1. Measured with bench/invites-api.mjs: requests during the image write went from ~50 % slower
 * than 5 ms to ~2 %.
 */
export const IMAGE_CHUNK = 128 * 1024;
