/**
 * Facts about the DB file images this store writes, shared by the main thread (durable-db.ts) and
 * the compaction worker (snapshot-worker.ts).
 */

/** Where an image records the generation it was compacted at: SQLite's user_version (bytes 60..63). */
export const GEN_AT = 60;
/**
 * Where a background compaction records how much of the previous generation's journal its image
 * holds: SQLite's `application_id` header field (bytes 68..71), 0 = all of it / not applicable.
 */
export const BASE_OFFSET_AT = 68;

/** Writes the generation and journal base into an exported image's header. */
export function stampImage(img: Uint8Array, gen: number, base: number): Buffer {
  const buf = Buffer.from(img.buffer, img.byteOffset, img.byteLength);
  buf.writeUInt32BE(gen >>> 0, GEN_AT);
  buf.writeUInt32BE(base >>> 0, BASE_OFFSET_AT);
  return buf;
}

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
