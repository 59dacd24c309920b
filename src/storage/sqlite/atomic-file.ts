/**
 * Replacing a file atomically, the one way every file of the durable database is replaced: write a
 * temporary file `<target>.tmp-<random>` beside it, fsync it, rename it over the target, fsync the
 * directory. A crash leaves the old file or the new one, plus at worst a temporary file that the
 * next lock holder removes (removeTempFiles).
 *
 * The steps are exported separately because a background compaction writes its image long before
 * it may rename it (under the lock, between two commits), and the compaction worker keeps the file
 * it wrote open, to recognise it by inode once it has become the database file.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { fsyncDir, randomSuffix, type FileLook } from "./fsutil.js";

const isRoot = () => process.getuid?.() === 0;

/** A new, empty temporary file beside `target` with `look`'s mode (and owner, as root). */
export function createTempSync(target: string, look: FileLook): { tmp: string; fd: number } {
  const tmp = `${target}.tmp-${randomSuffix()}`;
  const fd = fs.openSync(tmp, "wx", look.mode);
  try {
    fs.fchmodSync(fd, look.mode);
    if (look.uid !== undefined && look.gid !== undefined && isRoot()) fs.fchownSync(fd, look.uid, look.gid);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { tmp, fd };
}

/**
 * Writes `data` at the start of `fd` in pieces of `chunk` bytes, each flushed (fdatasync) before the
 * next, then fsyncs: a big file reaches the disk in small bursts, so other files' syncs queued
 * behind it wait for one piece, not the whole file (see IMAGE_CHUNK in db-image.ts).
 */
export function writePacedSync(fd: number, data: Uint8Array, chunk = Infinity): void {
  let off = 0;
  while (off < data.length) {
    const end = Math.min(data.length, off + chunk);
    while (off < end) off += fs.writeSync(fd, data, off, end - off, off);
    if (off < data.length) fs.fdatasyncSync(fd);
  }
  fs.fsyncSync(fd);
}

/** writeTempSync's steps on a descriptor kept open (the compaction worker's images). */
export function writeTempKeptOpen(target: string, data: Uint8Array, look: FileLook, chunk?: number): { tmp: string; fd: number } {
  const t = createTempSync(target, look);
  try {
    writePacedSync(t.fd, data, chunk);
  } catch (err) {
    fs.closeSync(t.fd);
    fs.rmSync(t.tmp, { force: true });
    throw err;
  }
  return t;
}

/** A written and fsynced temporary file beside `target` holding `data`; returns its path. */
export function writeTempSync(target: string, data: Uint8Array, look: FileLook, chunk?: number): string {
  const t = writeTempKeptOpen(target, data, look, chunk);
  fs.closeSync(t.fd);
  return t.tmp;
}

/**
 * The first `length` bytes of the data are written last, after `ready()` (run while the rest is
 * being written, by another thread) has filled them in: a header holding a checksum of the whole.
 */
export interface HeadLast {
  length: number;
  ready(): void;
}

/**
 * writeTempSync without blocking the event loop: for an image written on the main thread (tens of
 * MB), while requests go on being served.
 */
export async function writeTemp(target: string, data: Uint8Array, look: FileLook, chunk = Infinity, head?: HeadLast): Promise<string> {
  const tmp = `${target}.tmp-${randomSuffix()}`;
  const fh = await fsp.open(tmp, "wx", look.mode);
  try {
    try {
      await fh.chmod(look.mode);
      if (look.uid !== undefined && look.gid !== undefined && isRoot()) await fh.chown(look.uid, look.gid);
      const from = head ? Math.min(head.length, data.length) : 0;
      let off = from;
      let ready = head === undefined;
      while (off < data.length) {
        const end = Math.min(data.length, off + chunk);
        while (off < end) {
          const writing = fh.write(data, off, end - off, off);
          if (!ready) {
            ready = true;
            head!.ready(); // meanwhile, on this thread
          }
          off += (await writing).bytesWritten;
        }
        if (off < data.length) await fh.datasync();
      }
      if (!ready) head!.ready();
      for (let h = 0; h < from; ) h += (await fh.write(data, h, from - h, h)).bytesWritten;
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  return tmp;
}

/**
 * Renames a written temporary file over `target` and fsyncs the directory (the rename is then
 * durable). `beforeRename` runs first (crash tests stop there). On failure the temporary file is
 * removed and the error thrown.
 */
export function installTemp(tmp: string, target: string, beforeRename?: () => void): void {
  try {
    beforeRename?.();
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(path.dirname(target));
}

/** The whole sequence at once: `target` holds `data`, durably, whatever happens meanwhile. */
export function atomicWriteSync(target: string, data: Uint8Array, look: FileLook, beforeRename?: () => void): void {
  installTemp(writeTempSync(target, data, look), target, beforeRename);
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
