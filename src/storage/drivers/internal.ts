/**
 * storage = "internal": Prosody's file storage (mod_storage_internal + util/datamanager.lua), file
 * for file compatible with Prosody 0.12 (spec/prosody-model.md §2.3, §2.4, §2.6).
 *
 * Layout: `<data>/<encodeNode(host)>/<encodeStore(store)>/<encodeNode(user)>.dat`, and
 * `<data>/<encodeNode(host)>/<encodeStore(store)>.dat` for the host-wide record (user null); host
 * null is the directory `_global`. Content: `return <serialize(record)>;\n`.
 *
 * - keyval is the file; map is native here but behaves exactly like Prosody's shim (one file per
 *   user holding all keys; a map store and the keyval store of the same name are the same file).
 * - Every read reads the whole file again: a change by Prosody or another process is seen on the
 *   next read. Files are parsed by src/storage/lua/read.ts, which never executes anything; a
 *   malformed or hostile file is a StorageError naming the file (the store is never silently empty).
 *   Big files (>= 64 KiB) are not parsed again when their bytes are identical to the last ones seen
 *   (a cache keyed by the exact content, so never stale); map updates of big files reuse the
 *   serialised form of the unchanged entries.
 * - Concurrent map updates of one file in this process are applied together in one write.
 * - Writes: temporary file `.<random>.tmp` in the same directory, write, fsync, rename over the
 *   target, fsync the directory. The temporary name is short so that it never limits which names
 *   can be stored, and starts with "." so that it can never be a data file (encoded names never do)
 *   nor Prosody's own `<name>.dat~`. A user name whose file Prosody could not write (more than 250
 *   bytes encoded) is refused with NameTooLongError, and read as absent. An empty record deletes
 *   the file. New directories get 0750, new files 0640 (a replaced file keeps its mode, and its
 *   owner when we run as root; as root, new files and directories get the owner of their parent
 *   directory so that Prosody can use them).
 * - Every write, and every read-modify-write (map set/setKeys/deleteAll), of one file holds a
 *   cross-process lock (src/storage/sqlite/lock.ts: a unix socket in `<data_path>/.prosody-ts-locks`
 *   that the kernel frees when the holder dies, reachable only by who may write data_path) so no
 *   update of one of our processes is lost to another of our processes. Prosody
 *   itself takes no lock: against Prosody the last rename wins, as between two Prosody writers.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { decode, encodeNode, encodeStore, isWritableFileName } from "../lua/encode-path.js";
import { readLuaData } from "../lua/read.js";
import { serializeFileBytes } from "../lua/serialize.js";
import { ProcessLock } from "../sqlite/lock.js";
import { DIR_MODE, FILE_MODE, randomSuffix } from "../sqlite/fsutil.js";
import { cloneRecord, cloneValue } from "../values.js";
import {
  NameTooLongError,
  REMOVE,
  StorageError,
  type KeyvalStore,
  type MapStore,
  type Remove,
  type StorageProvider,
  type Store,
  type StoreRecord,
  type StoreType,
  type StoreValue,
} from "../types.js";

export type InternalLogLevel = "debug" | "info" | "warn" | "error";

export interface InternalProviderOptions {
  /** Prosody's data directory (`data_path`). */
  dataPath: string;
  /** The host whose records these are; null = Prosody's nil host (directory `_global`). */
  host: string | null;
  log?: (level: InternalLogLevel, message: string) => void;
  /** How long a write waits for another of our processes holding the same file (default 30 s). */
  lockTimeoutMs?: number;
}

/** Leftover temporary files older than this are from dead writers and are removed. */
const STALE_TMP_MS = 60_000;
// `.<random>.tmp`, and `.<file>.<random>.tmp` as earlier versions named them.
const TMP_RE = /^\.(?:.+\.)?[0-9a-f]{12}\.tmp$/;

const isRoot = () => process.getuid?.() === 0;

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function errMsg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ------------------------------------------------------------------ per-file exclusion

interface FileLock {
  /** Tail of this process's queue of operations on the file. */
  tail: Promise<unknown>;
  lock: ProcessLock;
  busy: number;
}

/** Shared by every provider in the process: the key is the absolute path of the file. */
const fileLocks = new Map<string, FileLock>();

/**
 * Runs `fn` while holding the file's lock: queued behind this process's earlier operations on the
 * same file, then holding the cross-process lock.
 */
function exclusive<T>(dataPath: string, file: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  let entry = fileLocks.get(file);
  if (!entry) {
    if (fileLocks.size >= 1024) {
      for (const [k, e] of fileLocks) if (e.busy === 0) fileLocks.delete(k);
    }
    // Locked in the data directory's lock directory, by the file's path inside it (the same
    // in every process whatever spelling of the data path it was given).
    const lock = new ProcessLock(dataPath, "internal:" + path.relative(dataPath, file), file, timeoutMs);
    entry = { tail: Promise.resolve(), lock, busy: 0 };
    fileLocks.set(file, entry);
  }
  const e = entry;
  e.busy++;
  const run = async () => {
    await e.lock.acquire();
    try {
      return await fn();
    } finally {
      e.lock.release();
    }
  };
  const result = e.tail.then(run, run);
  e.tail = result.then(
    () => {
      e.busy--;
    },
    () => {
      e.busy--;
    },
  );
  return result;
}

/**
 * Takes the lock that every write of `file` (an absolute path under the real data directory
 * `dataPath`, as `pathOf` gives it) takes, and keeps it until the returned function is called: for tools that
 * must keep our processes off a file for a while, and for tests of what a held lock does.
 */
export function holdFileLock(dataPath: string, file: string, timeoutMs = 30_000): Promise<() => void> {
  return new Promise((resolve, reject) => {
    exclusive(fs.realpathSync(dataPath), file, timeoutMs, () => new Promise<void>((release) => resolve(release))).catch(reject);
  });
}

// ------------------------------------------------------------------ parse cache

/**
 * Parsed content of big files, keyed by path AND by the exact bytes: a read always reads the whole
 * file and reuses the parsed value only when the bytes are identical (Buffer.equals), so the cache
 * can never be stale; it only saves the parsing (the expensive part for, e.g., an invite_token.dat
 * of thousands of invites). Cached records are shared and never mutated: they are copied before
 * being handed out, and a read-modify-write works on a shallow copy.
 */
interface Parsed {
  bytes: Buffer;
  rec: StoreRecord | undefined;
}
const CACHE_MIN_BYTES = 64 * 1024;
const CACHE_BUDGET_BYTES = 48 * 1024 * 1024;
const parsedCache = new Map<string, Parsed>();
let parsedCacheBytes = 0;

function cacheGet(file: string, bytes: Buffer): Parsed | undefined {
  const hit = parsedCache.get(file);
  if (!hit) return undefined;
  if (hit.bytes.length !== bytes.length || !hit.bytes.equals(bytes)) return undefined;
  parsedCache.delete(file); // LRU order: most recent last
  parsedCache.set(file, hit);
  return hit;
}

function cacheDrop(file: string): void {
  const old = parsedCache.get(file);
  if (old) {
    parsedCache.delete(file);
    parsedCacheBytes -= old.bytes.length;
  }
}

function cachePut(file: string, bytes: Buffer, rec: StoreRecord | undefined): void {
  cacheDrop(file);
  if (bytes.length < CACHE_MIN_BYTES || bytes.length > CACHE_BUDGET_BYTES) return;
  parsedCache.set(file, { bytes, rec });
  parsedCacheBytes += bytes.length;
  for (const [k, v] of parsedCache) {
    if (parsedCacheBytes <= CACHE_BUDGET_BYTES) break;
    parsedCache.delete(k);
    parsedCacheBytes -= v.bytes.length;
  }
}

/** Serialised top-level values of cached records (see serializeFileBytes), by identity. */
const entryCache = new WeakMap<object, Buffer>();

/** A deep copy of parsed data (no validation: a file may hold what values.ts would refuse, e.g. (1/0)). */
function copyData<T>(v: T): T {
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map(copyData) as T;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = copyData((v as Record<string, unknown>)[k]);
    if (k === "__proto__") Object.defineProperty(out, k, { value: x, enumerable: true, writable: true, configurable: true });
    else out[k] = x;
  }
  return out as T;
}

// ------------------------------------------------------------------ files

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
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

export interface InternalProvider extends StorageProvider {
  /** Path of the file holding `user`'s record of `store` (user null: the host-wide record). */
  pathOf(store: string, user: string | null): string;
}

export function createInternalProvider(opts: InternalProviderOptions): InternalProvider {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.lockTimeoutMs ?? 30_000;
  const absData = path.resolve(opts.dataPath);
  const hostPart = opts.host === null ? "_global" : encodeNode(opts.host);

  // The lock is keyed by the real path, so that two processes reaching the data through different
  // symlinks still exclude each other. Resolved once the data directory exists.
  let realData: string | undefined;
  const dataRoot = (): string => {
    if (realData) return realData;
    try {
      realData = fs.realpathSync(absData);
      return realData;
    } catch {
      return absData;
    }
  };
  const hostDir = () => path.join(dataRoot(), hostPart);
  const storeDir = (store: string) => path.join(hostDir(), encodeStore(store));
  const pathOf = (store: string, user: string | null): string => {
    if (typeof store !== "string" || store === "") throw new StorageError("internal storage: store name must be a non-empty string");
    return user === null ? path.join(hostDir(), encodeStore(store) + ".dat") : path.join(storeDir(store), encodeNode(user) + ".dat");
  };

  // ---------------------------------------------------------------- reading

  /**
   * The record in `file`; `shared` records come from the parse cache and must not be mutated or
   * handed out (copy them).
   */
  const readShared = async (file: string): Promise<{ rec: StoreRecord | undefined; shared: boolean }> => {
    let bytes: Buffer;
    try {
      bytes = await fsp.readFile(file);
    } catch (err) {
      cacheDrop(file);
      // A name too long for the file system cannot have been stored.
      if (errCode(err) === "ENOENT" || errCode(err) === "ENAMETOOLONG") return { rec: undefined, shared: false };
      log("error", `Unable to read ${file}: ${errMsg(err)}`);
      throw new StorageError(`${file}: cannot read: ${errMsg(err)}`);
    }
    if (bytes.length >= CACHE_MIN_BYTES) {
      const hit = cacheGet(file, bytes);
      if (hit) return { rec: hit.rec, shared: true };
    }
    let rec: StoreRecord | undefined;
    try {
      rec = asRecord(readLuaData(bytes, file), file);
    } catch (err) {
      cacheDrop(file);
      log("error", `Error reading storage: ${errMsg(err)}`);
      throw err;
    }
    if (bytes.length >= CACHE_MIN_BYTES) {
      cachePut(file, bytes, rec);
      return { rec, shared: true };
    }
    return { rec, shared: false };
  };

  /** A record the caller may keep and change. */
  const readOwned = async (file: string): Promise<StoreRecord | undefined> => {
    const { rec, shared } = await readShared(file);
    return shared ? copyData(rec) : rec;
  };

  /** One value of a record, for the caller to keep. */
  const readValue = async (file: string, key: string): Promise<StoreValue | undefined> => {
    const { rec, shared } = await readShared(file);
    if (!rec || !Object.prototype.hasOwnProperty.call(rec, key)) return undefined;
    return shared ? copyData(rec[key]) : rec[key];
  };

  // ---------------------------------------------------------------- writing

  /** Directories known to exist (Prosody caches its mkdir calls the same way). */
  const knownDirs = new Set<string>();
  /** Directories already checked for leftover temporary files in this process. */
  const sweptDirs = new Set<string>();

  const makeDir = async (dir: string): Promise<void> => {
    if (knownDirs.has(dir)) return;
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
        knownDirs.delete(parent);
        await makeDir(parent);
        return makeDir(dir);
      }
      if (code !== "EEXIST") throw err;
      const st = await fsp.stat(dir);
      if (!st.isDirectory()) throw new StorageError(`${dir}: exists and is not a directory`);
    }
    knownDirs.add(dir);
  };

  const sweep = async (dir: string): Promise<void> => {
    if (sweptDirs.has(dir)) return;
    sweptDirs.add(dir);
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
          log("info", `Removed a leftover temporary file ${p}`);
        }
      } catch {
        /* gone meanwhile */
      }
    }
  };

  /** Replaces `file` atomically with `rec`, or deletes it for an absent record. Call under exclusive(). */
  const writeFile = async (file: string, rec: StoreRecord | undefined, retried = false): Promise<void> => {
    const dir = path.dirname(file);
    cacheDrop(file);
    if (!rec) {
      try {
        await fsp.unlink(file);
      } catch (err) {
        if (errCode(err) === "ENOENT" || errCode(err) === "ENAMETOOLONG") return;
        throw new StorageError(`${file}: cannot delete: ${errMsg(err)}`);
      }
      await fsyncDir(dir);
      return;
    }
    const base = path.basename(file);
    if (!isWritableFileName(base)) {
      throw new NameTooLongError(`${file}: name too long for internal storage (${base.length - 4} bytes encoded, at most 250)`);
    }
    const bytes = serializeFileBytes(rec, entryCache);
    const tmp = path.join(dir, `.${randomSuffix()}.tmp`);
    try {
      await makeDir(dir);
      let mode = FILE_MODE;
      let owner: { uid: number; gid: number } | undefined;
      try {
        const st = await fsp.stat(file);
        mode = st.mode & 0o777;
        owner = { uid: st.uid, gid: st.gid };
      } catch (err) {
        if (errCode(err) !== "ENOENT") throw err;
        if (isRoot()) {
          const st = await fsp.stat(dir);
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
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      if (err instanceof StorageError) throw err;
      if (errCode(err) === "ENOENT" && !retried) {
        // A directory vanished under us: forget what we knew and try once more (as Prosody does).
        knownDirs.clear();
        return writeFile(file, rec, true);
      }
      log("error", `Unable to write ${file}: ${errMsg(err)}`);
      throw new StorageError(`${file}: cannot write: ${errMsg(err)}`);
    }
    try {
      await fsyncDir(dir);
    } catch (err) {
      throw new StorageError(`${dir}: cannot sync the directory: ${errMsg(err)}`);
    }
    // `rec` is ours (validated copies) and is not changed after this: it may be shared.
    cachePut(file, bytes, rec);
    await sweep(dir);
  };

  // Keyed under the real data path, as `file` is (pathOf): two processes given different spellings
  // of the data path (a symlink) must take the same lock for the same file.
  const withLock = <T>(file: string, fn: () => Promise<T>) => exclusive(dataRoot(), file, timeoutMs, fn);

  /** Map changes waiting for their file's lock, by file. */
  interface Batch {
    changes: [string, StoreValue | undefined][];
    done?: Promise<void>;
  }
  const pendingBatches = new Map<string, Batch>();

  // ---------------------------------------------------------------- stores

  const label = (store: string, user: string | null) => `internal store "${store}" (user ${user === null ? "nil" : JSON.stringify(user)})`;

  const listUsers = async (store: string): Promise<string[]> => {
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(storeDir(store), { withFileTypes: true });
    } catch (err) {
      const code = errCode(err);
      if (code === "ENOENT" || code === "ENOTDIR") return [];
      throw new StorageError(`${storeDir(store)}: cannot list: ${errMsg(err)}`);
    }
    const out: string[] = [];
    for (const e of entries) {
      if (!e.name.endsWith(".dat") || e.isDirectory()) continue;
      out.push(decode(e.name.slice(0, -4)));
    }
    return out;
  };

  function keyval(store: string): KeyvalStore {
    pathOf(store, null); // validates the name
    return {
      type: "keyval",
      get: (user) => readOwned(pathOf(store, user)),
      async set(user, data) {
        const rec = cloneRecord(data, label(store, user));
        const file = pathOf(store, user);
        await withLock(file, () => writeFile(file, rec));
      },
      async setIfAbsent(user, data) {
        const rec = cloneRecord(data, label(store, user));
        const file = pathOf(store, user);
        if (!rec) return !(await readShared(file)).rec; // nothing to write
        return withLock(file, async () => {
          if ((await readShared(file)).rec) return false;
          await writeFile(file, rec);
          return true;
        });
      },
      users: () => listUsers(store),
    };
  }

  function map(store: string): MapStore {
    pathOf(store, null);
    const has = (rec: StoreRecord, key: string) => Object.prototype.hasOwnProperty.call(rec, key);

    /**
     * Read-modify-write of one user's file, under the lock. Changes to the same file that arrive
     * while an earlier one waits or runs are applied together, in order, in one write (each caller
     * still resolves only once its change is on disk).
     */
    const modify = (user: string | null, changes: [string, StoreValue | undefined][]): Promise<void> => {
      const file = pathOf(store, user);
      let batch = pendingBatches.get(file);
      if (!batch) {
        const b: Batch = { changes: [] };
        batch = b;
        pendingBatches.set(file, b);
        // Closed to new changes once it starts, or once it has failed without starting (the
        // lock could not be taken): a dead batch must never swallow later changes.
        const close = () => {
          if (pendingBatches.get(file) === b) pendingBatches.delete(file);
        };
        b.done = withLock(file, async () => {
          close();
          const { rec: current } = await readShared(file);
          const rec: StoreRecord = { ...current }; // shallow: values are replaced, never changed
          let changed = false;
          for (const [key, value] of b.changes) {
            if (value === undefined) {
              if (has(rec, key)) {
                delete rec[key];
                changed = true;
              }
            } else {
              if (key === "__proto__") Object.defineProperty(rec, key, { value, enumerable: true, writable: true, configurable: true });
              else rec[key] = value;
              changed = true;
            }
          }
          if (!changed) return;
          for (const _ in rec) return writeFile(file, rec);
          return writeFile(file, undefined);
        });
        b.done.then(close, close);
      }
      batch.changes.push(...changes);
      return batch.done!;
    };

    /** Removes `key` and returns what it held, in one locked read-modify-write (see MapStore.take). */
    const take = (user: string | null, key: string): Promise<StoreValue | undefined> => {
      const file = pathOf(store, user);
      // Changes made after this call must not join a batch queued before it (that batch runs
      // first, so they would be applied before the take): close it; later changes start a new one.
      pendingBatches.delete(file);
      return withLock(file, async () => {
        const { rec: current, shared } = await readShared(file);
        if (!current || !has(current, key)) return undefined;
        const value = shared ? copyData(current[key]!) : current[key]!;
        const rec: StoreRecord = { ...current };
        delete rec[key];
        let empty = true;
        for (const _ in rec) empty = false;
        await writeFile(file, empty ? undefined : rec);
        return value;
      });
    };

    const prepare = (user: string | null, key: string, value: unknown): StoreValue | undefined =>
      value === undefined || value === null || value === REMOVE ? undefined : cloneValue(value, `${label(store, user)}, key ${JSON.stringify(key)}`);

    const allUsers = async (): Promise<(string | null)[]> => [...(await listUsers(store)), null];

    return {
      type: "map",
      get: (user, key) => readValue(pathOf(store, user), key),
      async set(user, key, value) {
        await modify(user, [[key, prepare(user, key, value)]]);
      },
      async setKeys(user, changes: Record<string, StoreValue | Remove>) {
        const list = Object.keys(changes).map((k): [string, StoreValue | undefined] => [k, prepare(user, k, changes[k])]);
        await modify(user, list);
      },
      take,
      async getAll(key) {
        const out = new Map<string, StoreValue>();
        for (const user of await allUsers()) {
          const v = await readValue(pathOf(store, user), key);
          if (v !== undefined) out.set(user ?? "", v);
        }
        return out;
      },
      async deleteAll(key) {
        for (const user of await allUsers()) await modify(user, [[key, undefined]]);
      },
    };
  }

  return {
    name: "internal",
    pathOf,
    open(store: string, type: StoreType): Store | undefined {
      if (type === "keyval") return keyval(store);
      if (type === "map") return map(store);
      return undefined;
    },
    async purge(user: string) {
      let entries: fs.Dirent[];
      try {
        entries = await fsp.readdir(hostDir(), { withFileTypes: true });
      } catch (err) {
        if (errCode(err) === "ENOENT") return;
        throw new StorageError(`${hostDir()}: cannot list: ${errMsg(err)}`);
      }
      const base = encodeNode(user);
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const dat = path.join(hostDir(), e.name, base + ".dat");
        await withLock(dat, () => writeFile(dat, undefined));
        await fsp.rm(path.join(hostDir(), e.name, base + ".list"), { force: true }).catch((err) => {
          if (errCode(err) !== "ENAMETOOLONG") throw err; // a name that long cannot exist
        });
      }
    },
  };
}
