/**
 * Knowing that a cached data file is unchanged without reading it again.
 *
 * The parse cache keeps, with each big file, an open descriptor of the inode its bytes came from
 * (a "pin") and that inode's identity and modification time when they were read or written
 * ("stamp": device, inode, size, mtime in nanoseconds; not ctime, which the rename that
 * installs a file we wrote changes: the stamp is taken before it). While the descriptor is open the inode number
 * cannot be given to another file, so a path whose stat gives the same stamp is the same inode,
 * unwritten since: Prosody (util/datamanager's atomic_store) and this driver only ever replace a
 * data file by renaming a new one over it, which gives a new inode. The one change the stamp
 * cannot see is an in-place rewrite of the same size within the file system's timestamp tick
 * (a few ms) of the stamp, or one that sets the old mtime back; nothing that writes these files
 * does that.
 *
 * Without it, checking the cache meant reading the whole file on every lookup: 35 MB for an
 * invite_token.dat of 100k invites.
 *
 * Raw descriptors, not FileHandles: a FileHandle left to the garbage collector is closed with a
 * warning on stderr, and a pin lives as long as its cache entry.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";

export interface Pin {
  fd: number;
  stamp: string;
}

const stampOf = (st: fs.BigIntStats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;

/** The stamp of what `fd` refers to now. */
export function pinFd(fd: number): Promise<Pin> {
  return new Promise((resolve, reject) =>
    fs.fstat(fd, { bigint: true }, (err, st) => {
      if (err) reject(err);
      // Reading a directory through a descriptor gives no error, unlike reading its path.
      else if (!st.isFile()) reject(Object.assign(new Error("not a regular file"), { code: st.isDirectory() ? "EISDIR" : "EINVAL" }));
      else resolve({ fd, stamp: stampOf(st) });
    }),
  );
}

/** The stamp of the file at `file` now (rejects as stat does, e.g. ENOENT). */
export async function stampOfPath(file: string): Promise<string> {
  return stampOf(await fsp.stat(file, { bigint: true }));
}

/** Closes a pin's descriptor (nothing else uses it: it only holds the inode). */
export function unpin(pin: Pin | undefined): void {
  if (pin) fs.close(pin.fd, () => {});
}

/**
 * `file`'s bytes with a pin on the inode they came from, stamped before reading: a write during
 * the read changes the inode's times after the stamp, so it is seen by the next check.
 */
export async function readPinned(file: string): Promise<{ bytes: Buffer; pin: Pin }> {
  const fd = await new Promise<number>((resolve, reject) => fs.open(file, "r", (err, fd) => (err ? reject(err) : resolve(fd))));
  try {
    const pin = await pinFd(fd);
    const bytes = await new Promise<Buffer>((resolve, reject) => fs.readFile(fd, (err, b) => (err ? reject(err) : resolve(b))));
    return { bytes, pin };
  } catch (err) {
    fs.close(fd, () => {});
    throw err;
  }
}
