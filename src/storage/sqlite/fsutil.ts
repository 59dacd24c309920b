/** Small synchronous/asynchronous file helpers for the durable database. */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

export const FILE_MODE = 0o640;
export const DIR_MODE = 0o750;

export function randomSuffix(): string {
  return crypto.randomBytes(6).toString("hex");
}

/** fsync a directory so that renames/unlinks in it are durable. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Mode and (when running as root) ownership a replacement file should get, copied from `like`. */
export interface FileLook {
  mode: number;
  uid?: number;
  gid?: number;
}

export function lookOf(file: string): FileLook {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st) return { mode: FILE_MODE };
  return { mode: st.mode & 0o777, uid: st.uid, gid: st.gid };
}

export function applyLookSync(fd: number, look: FileLook): void {
  fs.fchmodSync(fd, look.mode);
  if (look.uid !== undefined && look.gid !== undefined && process.getuid?.() === 0) {
    fs.fchownSync(fd, look.uid, look.gid);
  }
}

/** Write `data` to a new temporary file next to `target`, fsync it, rename it over `target`, fsync the dir. */
export function atomicWriteSync(target: string, data: Uint8Array, look: FileLook, beforeRename?: () => void): void {
  const tmp = `${target}.tmp-${randomSuffix()}`;
  const fd = fs.openSync(tmp, "wx", look.mode);
  try {
    applyLookSync(fd, look);
    let off = 0;
    while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    beforeRename?.();
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(path.dirname(target));
}

/** Removes leftovers `<base>.tmp-*` of crashed writers (only call while holding the write lock). */
export function removeTempFiles(dir: string, bases: string[]): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (bases.some((b) => name.startsWith(`${b}.tmp-`))) fs.rmSync(path.join(dir, name), { force: true });
  }
}

export function writeAllSync(fd: number, data: Uint8Array, position: number): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, position + off);
}

export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function readAtSync(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let off = 0;
  while (off < length) {
    const n = fs.readSync(fd, buf, off, length - off, position + off);
    if (n === 0) break;
    off += n;
  }
  return off === length ? buf : buf.subarray(0, off);
}

/**
 * Writes `data` at the start of `fd` in pieces of `chunk` bytes, each flushed (fdatasync) before the
 * next, then fsyncs: a big file reaches the disk in small bursts, so other files' syncs queued
 * behind it wait for one piece, not the whole file (see IMAGE_CHUNK).
 */
export function writePacedSync(fd: number, data: Uint8Array, chunk: number): void {
  let off = 0;
  while (off < data.length) {
    const end = Math.min(data.length, off + chunk);
    while (off < end) off += fs.writeSync(fd, data, off, end - off, off);
    if (off < data.length) fs.fdatasyncSync(fd);
  }
  fs.fsyncSync(fd);
}
