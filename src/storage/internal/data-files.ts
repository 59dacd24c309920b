/**
 * Reading and replacing the internal driver's data files (`return <record>;\n`, Prosody 0.12's
 * format), through a parse cache. No locking here: callers hold the file's lock (file-locks.ts)
 * around every write and read-modify-write.
 *
 * A replacement is atomic: temporary file `.<random>.tmp` in the same directory, write, fsync,
 * rename over the target, fsync the directory. The temporary name is short so that it never limits
 * which names can be stored, and starts with "." so that it can never be a data file (encoded names
 * never do) nor Prosody's own `<name>.dat~`. An empty record deletes the file.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { isWritableFileName } from "../lua/encode-path.js";
import { readLuaData, readLuaDataIndexed } from "../lua/read.js";
import { serializeFileBytes, type EntryIndex } from "../lua/serialize.js";
import { DIR_MODE, FILE_MODE, randomSuffix } from "../sqlite/fsutil.js";
import { NameTooLongError, StorageError, type KeyvalData, type StoreValue } from "../types.js";
import { applyMapChanges, setOwn } from "../values.js";
import { CACHE_MIN_BYTES, type ParseCache, type Parsed } from "./parse-cache.js";
import { pinFd, readPinned, stampOfPath, unpin, type Pin } from "./pins.js";
import { Rope } from "./rope.js";
import { planSplice, type KeyChange } from "./splice.js";

/** Writes every part of `bytes` at the start of the new file `fd` (writev may write less than asked). */
async function writeAll(fd: number, bytes: Rope): Promise<void> {
  let parts = bytes.parts as Buffer[];
  let at = 0;
  while (parts.length > 0) {
    const written = await call<number>((cb) => fs.writev(fd, parts, at, cb));
    at += written;
    let skip = written;
    let i = 0;
    while (i < parts.length && skip >= parts[i]!.length) skip -= parts[i++]!.length;
    parts = parts.slice(i);
    if (skip > 0) parts[0] = parts[0]!.subarray(skip);
  }
}

/** A node-style call as a promise. */
const call = <T = void>(fn: (cb: (err: NodeJS.ErrnoException | null, value?: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));

export type InternalLogLevel = "debug" | "info" | "warn" | "error";
export type InternalLog = (level: InternalLogLevel, message: string) => void;

/** Leftover temporary files older than this are from dead writers and are removed. */
const STALE_TMP_MS = 60_000;
// `.<random>.tmp`, and `.<file>.<random>.tmp` as earlier versions named them.
const TMP_RE = /^\.(?:.+\.)?[0-9a-f]{12}\.tmp$/;

const isRoot = () => process.getuid?.() === 0;

export function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A deep copy of parsed data (no validation: a file may hold what values.ts would refuse, e.g. (1/0)). */
export function copyData<T>(v: T): T {
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map(copyData) as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    setOwn(out, k, copyData((v as Record<string, unknown>)[k]));
  }
  return out as T;
}

/**
 * The record a data file's value stands for (undefined: none): a table with string keys as an
 * object, a Lua sequence (what the reader gives for a pure 1..n table) as an array.
 */
function asRecord(v: unknown, file: string): KeyvalData | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.length === 0 ? undefined : (v as StoreValue[]);
  if (typeof v !== "object" || v === null) {
    throw new StorageError(`${file}: the file holds a ${typeof v}, not a table`);
  }
  for (const _ in v) return v as KeyvalData;
  return undefined;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class DataFiles {
  /** Directories known to exist (Prosody caches its mkdir calls the same way). */
  private readonly knownDirs = new Set<string>();
  /** Directories already checked for leftover temporary files by this owner. */
  private readonly sweptDirs = new Set<string>();

  constructor(
    private readonly cache: ParseCache,
    private readonly log: InternalLog,
  ) {}

  // --- reading

  /**
   * The record in `file`; `shared` records come from the parse cache and must not be mutated or
   * handed out (copy them).
   */
  async readShared(file: string): Promise<{ rec: KeyvalData | undefined; shared: boolean; entry?: Parsed }> {
    let bytes: Buffer;
    let pin: Pin | undefined;
    try {
      const cached = this.cache.current(file);
      if (cached && cached.pin && (await stampOfPath(file)) === cached.pin.stamp && this.cache.current(file) === cached) {
        this.cache.get(file, cached.bytes); // most recently used
        return { rec: cached.rec, shared: true, entry: cached };
      }
      ({ bytes, pin } = await readPinned(file));
      const again = this.cache.current(file);
      if (again && this.cache.get(file, bytes) === again) {
        // Unchanged after all (e.g. touched): the cached record stands, pinned anew.
        this.cache.repin(again, pin);
        return { rec: again.rec, shared: true, entry: again };
      }
    } catch (err) {
      this.cache.drop(file);
      // A name too long for the file system cannot have been stored.
      if (errCode(err) === "ENOENT" || errCode(err) === "ENAMETOOLONG") return { rec: undefined, shared: false };
      this.log("error", `Unable to read ${file}: ${errMsg(err)}`);
      throw new StorageError(`${file}: cannot read: ${errMsg(err)}`);
    }
    let rec: KeyvalData | undefined;
    let index: EntryIndex | undefined;
    try {
      if (bytes.length >= CACHE_MIN_BYTES) {
        // Cached: with its members' places, so that a change splices (splice.ts) even the first time.
        const parsed = readLuaDataIndexed(bytes, file);
        rec = asRecord(parsed.value, file);
        if (rec === parsed.value && !Array.isArray(rec)) index = parsed.index;
      } else rec = asRecord(readLuaData(bytes, file), file);
    } catch (err) {
      unpin(pin);
      this.cache.drop(file);
      this.log("error", `Error reading storage: ${errMsg(err)}`);
      throw err;
    }
    if (bytes.length >= CACHE_MIN_BYTES) {
      this.cache.put(file, Rope.of(bytes), rec, index, pin);
      return { rec, shared: true, entry: this.cache.current(file) };
    }
    unpin(pin);
    return { rec, shared: false };
  }

  /** A record the caller may keep and change. */
  async readOwned(file: string): Promise<KeyvalData | undefined> {
    const { rec, shared } = await this.readShared(file);
    return shared ? copyData(rec) : rec;
  }

  /** One value of a record, for the caller to keep. */
  async readValue(file: string, key: string): Promise<StoreValue | undefined> {
    const { rec, shared } = await this.readShared(file);
    // A sequence has no string keys (Prosody: `t["1"]` of a sequence is nil).
    if (!rec || Array.isArray(rec) || !Object.prototype.hasOwnProperty.call(rec, key)) return undefined;
    return shared ? copyData(rec[key]) : rec[key];
  }

  // --- writing

  /**
   * Replaces `file` atomically with `rec`, or deletes it for an absent record. Call under the
   * file's lock. `rec` must not be changed afterwards: it may be shared through the parse cache.
   */
  async write(file: string, rec: KeyvalData | undefined): Promise<void> {
    if (!rec) {
      this.cache.drop(file);
      return this.remove(file, path.dirname(file));
    }
    // A sequence gets no index: map changes never splice into it (see FileUpdates).
    const index: EntryIndex | undefined = Array.isArray(rec) ? undefined : new Map();
    const bytes = Rope.of(serializeFileBytes(rec, this.cache.entries, index));
    // Until the rename, the cached entry (if any) still stands for the file.
    await this.store(file, bytes, (pin) => this.cache.put(file, bytes, rec, index, pin));
  }

  /**
   * Applies `changes` to the cached record `entry` of `file` (read under the file's lock, its bytes
   * the file's) by splicing its bytes (splice.ts) instead of serialising the whole record again.
   * "full" when that cannot be done (the caller writes the whole record), "unchanged" when there
   * is nothing to write. On success the cached record is changed in place: it was never handed out
   * (readers copy what they take from it), and until the new bytes are the file's, readers found
   * the old ones and the record as it was.
   */
  async writeChanges(file: string, entry: Parsed, changes: readonly KeyChange[]): Promise<"done" | "unchanged" | "full"> {
    if (!entry.index || !entry.rec || Array.isArray(entry.rec)) return "full";
    const plan = planSplice(entry.bytes, entry.index, changes);
    if (plan.kind !== "splice") return plan.kind;
    const { index, rec } = entry;
    await this.store(file, plan.bytes, (pin) => {
      // The new bytes are the file's from now on: so is the changed record.
      if (this.cache.current(file) !== entry) return unpin(pin);
      plan.commit(index);
      applyMapChanges(rec, changes);
      this.cache.replaced(file, entry, plan.bytes, pin);
    });
    return "done";
  }

  /**
   * Replaces `file` with `bytes` (see the header), creating its directory if needed. `renamed`
   * runs as soon as the new bytes are the file's (before the directory is synced), with a pin on
   * the new inode (pins.ts) when the file is big enough to be cached.
   */
  private async store(file: string, bytes: Rope, renamed: (pin: Pin | undefined) => void, retried = false): Promise<void> {
    const dir = path.dirname(file);
    const base = path.basename(file);
    if (!isWritableFileName(base)) {
      throw new NameTooLongError(`${file}: name too long for internal storage (${base.length - 4} bytes encoded, at most 250)`);
    }
    const tmp = path.join(dir, `.${randomSuffix()}.tmp`);
    let replaced: Pin | undefined;
    try {
      await this.makeDir(dir);
      replaced = await this.replace(file, tmp, bytes, bytes.length >= CACHE_MIN_BYTES, renamed);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      if (err instanceof StorageError) throw err;
      if (errCode(err) === "ENOENT" && !retried) {
        // A directory vanished under us: forget what we knew and try once more (as Prosody does).
        this.knownDirs.clear();
        return this.store(file, bytes, renamed, true);
      }
      this.log("error", `Unable to write ${file}: ${errMsg(err)}`);
      throw new StorageError(`${file}: cannot write: ${errMsg(err)}`);
    }
    try {
      await fsyncDir(dir);
    } catch (err) {
      throw new StorageError(`${dir}: cannot sync the directory: ${errMsg(err)}`);
    } finally {
      // Only now: this close frees the replaced inode's blocks, and the directory's sync would wait for that.
      unpin(replaced);
    }
    await this.sweep(dir);
  }

  private async remove(file: string, dir: string): Promise<void> {
    try {
      await fsp.unlink(file);
    } catch (err) {
      if (errCode(err) === "ENOENT" || errCode(err) === "ENAMETOOLONG") return;
      throw new StorageError(`${file}: cannot delete: ${errMsg(err)}`);
    }
    await fsyncDir(dir);
  }

  /**
   * Writes `bytes` to the new file `tmp` and renames it over `file`. A replaced file keeps its
   * mode, and its owner when we run as root; as root, a new file gets the owner of its directory
   * (so that Prosody can use it). Returns the cache's pin on the replaced inode, for the caller to close.
   */
  private async replace(file: string, tmp: string, bytes: Rope, keep: boolean, renamed: (pin: Pin | undefined) => void): Promise<Pin | undefined> {
    let mode = FILE_MODE;
    let owner: { uid: number; gid: number } | undefined;
    try {
      const st = await fsp.stat(file);
      mode = st.mode & 0o777;
      owner = { uid: st.uid, gid: st.gid };
    } catch (err) {
      if (errCode(err) !== "ENOENT") throw err;
      if (isRoot()) {
        const st = await fsp.stat(path.dirname(file));
        owner = { uid: st.uid, gid: st.gid };
      }
    }
    // A raw descriptor: it becomes the new file's pin (pins.ts) when `keep`.
    const fd = await call<number>((cb) => fs.open(tmp, "wx", mode, cb));
    let open = true;
    try {
      await call((cb) => fs.fchmod(fd, mode, cb));
      if (owner && isRoot()) await call((cb) => fs.fchown(fd, owner.uid, owner.gid, cb));
      await writeAll(fd, bytes);
      await call((cb) => fs.fsync(fd, cb));
      const pin = keep ? await pinFd(fd) : undefined;
      if (!keep) {
        open = false;
        await call((cb) => fs.close(fd, cb));
      }
      await fsp.rename(tmp, file);
      open = false; // the pin's now
      const replaced = this.cache.detachPin(file);
      renamed(pin);
      return replaced;
    } finally {
      if (open) fs.close(fd, () => {});
    }
  }

  /** Creates `dir` (and missing parents) with DIR_MODE; as root, owned like its parent. */
  private async makeDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    try {
      await fsp.mkdir(dir, { mode: DIR_MODE });
      await fsp.chmod(dir, DIR_MODE); // the umask may have taken bits away
      if (isRoot()) {
        const parent = await fsp.stat(path.dirname(dir));
        await fsp.chown(dir, parent.uid, parent.gid);
      }
    } catch (err) {
      const code = errCode(err);
      const parent = path.dirname(dir);
      if (code === "ENOENT" && parent !== dir) {
        // A parent is missing (the host directory, or even the data directory): create it first.
        this.knownDirs.delete(parent);
        await this.makeDir(parent);
        return this.makeDir(dir);
      }
      if (code !== "EEXIST") throw err;
      const st = await fsp.stat(dir);
      if (!st.isDirectory()) throw new StorageError(`${dir}: exists and is not a directory`);
    }
    this.knownDirs.add(dir);
  }

  /** Removes temporary files of dead writers from `dir`, once per directory. */
  private async sweep(dir: string): Promise<void> {
    if (this.sweptDirs.has(dir)) return;
    this.sweptDirs.add(dir);
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      return;
    }
    const now = Date.now();
    for (const name of names) {
      if (!TMP_RE.test(name)) continue;
      const p = path.join(dir, name);
      try {
        const st = await fsp.stat(p);
        if (now - st.mtimeMs > STALE_TMP_MS) {
          await fsp.rm(p, { force: true });
          this.log("info", `Removed a leftover temporary file ${p}`);
        }
      } catch {
        /* gone meanwhile */
      }
    }
  }
}
