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
import fsp from "node:fs/promises";
import path from "node:path";
import { isWritableFileName } from "../lua/encode-path.js";
import { readLuaData } from "../lua/read.js";
import { serializeFileBytes, type EntryIndex } from "../lua/serialize.js";
import { DIR_MODE, FILE_MODE, randomSuffix } from "../sqlite/fsutil.js";
import { NameTooLongError, StorageError, type StoreRecord, type StoreValue } from "../types.js";
import { applyMapChanges, setOwn } from "../values.js";
import { CACHE_MIN_BYTES, type ParseCache, type Parsed } from "./parse-cache.js";
import { planSplice, type KeyChange } from "./splice.js";

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

/** The record a data file's value stands for (undefined: none). */
function asRecord(v: unknown, file: string): StoreRecord | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    const out: StoreRecord = {};
    v.forEach((item, i) => (out[String(i + 1)] = item as StoreValue));
    return out;
  }
  if (typeof v !== "object" || v === null) {
    throw new StorageError(`${file}: the file holds a ${typeof v}, not a table`);
  }
  for (const _ in v) return v as StoreRecord;
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
  /** A buffer for sameBytes, when no read is using it. */
  private scratch: Buffer | undefined;

  constructor(
    private readonly cache: ParseCache,
    private readonly log: InternalLog,
  ) {}

  // --- reading

  /**
   * The record in `file`; `shared` records come from the parse cache and must not be mutated or
   * handed out (copy them).
   */
  async readShared(file: string): Promise<{ rec: StoreRecord | undefined; shared: boolean; entry?: Parsed }> {
    let bytes: Buffer;
    try {
      const cached = this.cache.current(file);
      if (cached) {
        const same = await this.sameBytes(file, cached.bytes);
        if (same === true) {
          const hit = this.cache.get(file, cached.bytes)!;
          return { rec: hit.rec, shared: true, entry: hit };
        }
        bytes = same;
      } else bytes = await fsp.readFile(file);
    } catch (err) {
      this.cache.drop(file);
      // A name too long for the file system cannot have been stored.
      if (errCode(err) === "ENOENT" || errCode(err) === "ENAMETOOLONG") return { rec: undefined, shared: false };
      this.log("error", `Unable to read ${file}: ${errMsg(err)}`);
      throw new StorageError(`${file}: cannot read: ${errMsg(err)}`);
    }
    let rec: StoreRecord | undefined;
    try {
      rec = asRecord(readLuaData(bytes, file), file);
    } catch (err) {
      this.cache.drop(file);
      this.log("error", `Error reading storage: ${errMsg(err)}`);
      throw err;
    }
    if (bytes.length >= CACHE_MIN_BYTES) {
      this.cache.put(file, bytes, rec);
      return { rec, shared: true, entry: this.cache.current(file) };
    }
    return { rec, shared: false };
  }

  /**
   * True when `file` holds exactly `bytes`, else what it holds. A file of the same size is read
   * into a scratch buffer kept for the purpose: a big file read to check that the cache still
   * holds it would otherwise allocate its size on every read (35 MB for 100k invites), and the
   * garbage collector's work would then dominate.
   */
  private async sameBytes(file: string, bytes: Buffer): Promise<true | Buffer> {
    const fh = await fsp.open(file, "r");
    try {
      const size = (await fh.stat()).size;
      if (size !== bytes.length) return await fh.readFile();
      const scratch = this.scratch && this.scratch.length >= size ? this.scratch : Buffer.allocUnsafe(size);
      this.scratch = undefined; // ours while we read (readers run concurrently)
      try {
        let at = 0;
        while (at < size) {
          const { bytesRead } = await fh.read(scratch, at, size - at, at);
          if (bytesRead === 0) break;
          at += bytesRead;
        }
        if (at === size && scratch.subarray(0, size).equals(bytes)) return true;
        return await fh.readFile(); // positional reads left the position at 0: the whole file

      } finally {
        this.scratch = scratch;
      }
    } finally {
      await fh.close();
    }
  }

  /** A record the caller may keep and change. */
  async readOwned(file: string): Promise<StoreRecord | undefined> {
    const { rec, shared } = await this.readShared(file);
    return shared ? copyData(rec) : rec;
  }

  /** One value of a record, for the caller to keep. */
  async readValue(file: string, key: string): Promise<StoreValue | undefined> {
    const { rec, shared } = await this.readShared(file);
    if (!rec || !Object.prototype.hasOwnProperty.call(rec, key)) return undefined;
    return shared ? copyData(rec[key]) : rec[key];
  }

  // --- writing

  /**
   * Replaces `file` atomically with `rec`, or deletes it for an absent record. Call under the
   * file's lock. `rec` must not be changed afterwards: it may be shared through the parse cache.
   */
  async write(file: string, rec: StoreRecord | undefined): Promise<void> {
    this.cache.drop(file);
    if (!rec) return this.remove(file, path.dirname(file));
    const index: EntryIndex = new Map();
    const bytes = serializeFileBytes(rec, this.cache.entries, index);
    await this.store(file, bytes);
    this.cache.put(file, bytes, rec, index);
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
    if (!entry.index || !entry.rec) return "full";
    const plan = planSplice(entry.bytes, entry.index, changes);
    if (plan.kind !== "splice") return plan.kind;
    try {
      await this.store(file, plan.bytes);
    } catch (err) {
      this.cache.drop(file); // the file may or may not hold the new bytes
      throw err;
    }
    if (this.cache.current(file) === entry) {
      plan.commit(entry.index);
      applyMapChanges(entry.rec, changes);
      this.cache.replaced(file, entry, plan.bytes);
    }
    return "done";
  }

  /** Replaces `file` with `bytes` (see the header), creating its directory if needed. */
  private async store(file: string, bytes: Buffer, retried = false): Promise<void> {
    const dir = path.dirname(file);
    const base = path.basename(file);
    if (!isWritableFileName(base)) {
      throw new NameTooLongError(`${file}: name too long for internal storage (${base.length - 4} bytes encoded, at most 250)`);
    }
    const tmp = path.join(dir, `.${randomSuffix()}.tmp`);
    try {
      await this.makeDir(dir);
      await this.replace(file, tmp, bytes);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      if (err instanceof StorageError) throw err;
      if (errCode(err) === "ENOENT" && !retried) {
        // A directory vanished under us: forget what we knew and try once more (as Prosody does).
        this.knownDirs.clear();
        return this.store(file, bytes, true);
      }
      this.log("error", `Unable to write ${file}: ${errMsg(err)}`);
      throw new StorageError(`${file}: cannot write: ${errMsg(err)}`);
    }
    try {
      await fsyncDir(dir);
    } catch (err) {
      throw new StorageError(`${dir}: cannot sync the directory: ${errMsg(err)}`);
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
   * (so that Prosody can use it).
   */
  private async replace(file: string, tmp: string, bytes: Uint8Array): Promise<void> {
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
    const fh = await fsp.open(tmp, "wx", mode);
    try {
      await fh.chmod(mode);
      if (owner && isRoot()) await fh.chown(owner.uid, owner.gid);
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
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
