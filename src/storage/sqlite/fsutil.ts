/** Small file helpers for the durable database (replacing a file whole: atomic-file.ts). */
import crypto from "node:crypto";
import fs from "node:fs";
import { MessageChannel } from "node:worker_threads";

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

/** Descriptors that must stay open while an fdatasync on them is in flight (fd numbers get reused). */
export class PinnedFds {
  private readonly pins = new Map<number, number>();
  private readonly closeWhenUnpinned = new Set<number>();

  pin(fd: number): void {
    this.pins.set(fd, (this.pins.get(fd) ?? 0) + 1);
  }

  unpin(fd: number): void {
    const n = (this.pins.get(fd) ?? 1) - 1;
    if (n > 0) {
      this.pins.set(fd, n);
      return;
    }
    this.pins.delete(fd);
    if (this.closeWhenUnpinned.delete(fd)) closeQuietly(fd);
  }

  /** Closes `fd` now, or once its last pin is gone. */
  close(fd: number): void {
    if (this.pins.has(fd)) this.closeWhenUnpinned.add(fd);
    else closeQuietly(fd);
  }
}

export function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
}

/** Below this, a buffer is left to the garbage collector. */
const RELEASE_MIN = 1 << 20;

/**
 * Gives the memory of a large buffer back now, instead of at the next full garbage collection: a
 * DB image (tens of MB) is garbage as soon as it is written or loaded, but an idle server may run
 * no full collection for a long time, so it would stay resident (measured: 40 MB after start, 70 MB
 * after a fold, at 100k-180k invites). Node 20 has no `ArrayBuffer.prototype.transfer`; the one way
 * to end an ArrayBuffer's life from JavaScript is to transfer it away: into a message to a closed
 * port, which is dropped with its contents. `buf` (and every view on its memory) is then empty.
 * Only for a buffer that owns its whole, unshared memory and that nothing else refers to; others
 * (small, pooled, shared, views into a larger buffer) are left alone.
 */
export function releaseBuffer(buf: Uint8Array): void {
  const ab = buf.buffer;
  if (!(ab instanceof ArrayBuffer) || ab.byteLength < RELEASE_MIN || buf.byteOffset !== 0) return;
  const { port1, port2 } = new MessageChannel();
  port2.close();
  try {
    port1.postMessage(null, [ab]);
  } catch {
    /* not transferable (e.g. marked untransferable by Node): the collector will do */
  } finally {
    port1.close();
  }
}
