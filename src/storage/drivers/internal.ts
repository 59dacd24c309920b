/**
 * storage = "internal": Prosody's file storage (mod_storage_internal + util/datamanager.lua), file
 * for file compatible with Prosody 0.12 (spec/prosody-model.md §2.3, §2.4, §2.6).
 *
 * Layout: `<data>/<encodeNode(host)>/<encodeStore(store)>/<encodeNode(user)>.dat`, and
 * `<data>/<encodeNode(host)>/<encodeStore(store)>.dat` for the host-wide record (user null); host
 * null is the directory `_global`. Content: `return <serialize(record)>;\n`.
 *
 * - keyval is the file; map is native here but behaves exactly like Prosody's shim
 *   (../internal/stores.ts).
 * - Every read reads the whole file again: a change by Prosody or another process is seen on the
 *   next read. Files are parsed by src/storage/lua/read.ts, which never executes anything; a
 *   malformed or hostile file is a StorageError naming the file (the store is never silently empty).
 *   Big files (>= 64 KiB) are not parsed again while they are the same unwritten inode as when last
 *   read or written, or failing that check hold exactly the same bytes (../internal/parse-cache.ts,
 *   pins.ts); map updates of big files reuse the serialised form of the unchanged entries.
 * - Concurrent map updates of one file by one provider are applied together in one write
 *   (../internal/file-updates.ts).
 * - Writes replace the file atomically (../internal/data-files.ts). A user name whose file Prosody
 *   could not write (more than 250 bytes encoded) is refused with NameTooLongError, and read as
 *   absent. An empty record deletes the file. New directories get 0750, new files 0640 (a replaced
 *   file keeps its mode, and its owner when we run as root; as root, new files and directories get
 *   the owner of their parent directory so that Prosody can use them).
 * - Every write, and every read-modify-write (map set/setKeys/deleteAll), of one file holds a
 *   cross-process lock (src/storage/sqlite/lock.ts: a unix socket in `<data_path>/.prosody-ts-locks`
 *   that the kernel frees when the holder dies, reachable only by who may write data_path) so no
 *   update of one of our processes is lost to another of our processes. Prosody
 *   itself takes no lock: against Prosody the last rename wins, as between two Prosody writers.
 * - Locks and the parse cache live in an InternalShared that the providers of one runtime share
 *   (mod_storage_internal keeps it in the runtime's shared table); a provider given none has its
 *   own. Two owners in one process still exclude each other through the cross-process lock.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { decode, encodeNode, encodeStore } from "../lua/encode-path.js";
import { DataFiles, errCode, errMsg, type InternalLog } from "../internal/data-files.js";
import { FileLocks } from "../internal/file-locks.js";
import { FileUpdates } from "../internal/file-updates.js";
import { ParseCache } from "../internal/parse-cache.js";
import { keyvalStore, mapStore, type StoreDeps } from "../internal/stores.js";
import { StorageError, type StorageProvider, type Store, type StoreType } from "../types.js";

export type { InternalLogLevel } from "../internal/data-files.js";

/** What the internal providers of one owner (a runtime) share: file locks and the parse cache. */
export interface InternalShared {
  readonly locks: FileLocks;
  readonly cache: ParseCache;
}

export function createInternalShared(): InternalShared {
  return { locks: new FileLocks(), cache: new ParseCache() };
}

export interface InternalProviderOptions {
  /** Prosody's data directory (`data_path`). */
  dataPath: string;
  /** The host whose records these are; null = Prosody's nil host (directory `_global`). */
  host: string | null;
  log?: InternalLog;
  /** How long a write waits for another of our processes holding the same file (default 30 s). */
  lockTimeoutMs?: number;
  /** Locks and parse cache shared with the other providers of the same runtime (default: its own). */
  shared?: InternalShared;
}

export interface InternalProvider extends StorageProvider {
  /** Path of the file holding `user`'s record of `store` (user null: the host-wide record). */
  pathOf(store: string, user: string | null): string;
}

/**
 * Takes the lock that every write of `file` (an absolute path under the real data directory
 * `dataPath`, as `pathOf` gives it) takes, and keeps it until the returned function is called: for tools that
 * must keep our processes off a file for a while, and for tests of what a held lock does.
 */
export function holdFileLock(dataPath: string, file: string, timeoutMs = 30_000): Promise<() => void> {
  const locks = new FileLocks();
  return new Promise((resolve, reject) => {
    locks.exclusive(fs.realpathSync(dataPath), file, timeoutMs, () => new Promise<void>((release) => resolve(release))).catch(reject);
  });
}

export function createInternalProvider(opts: InternalProviderOptions): InternalProvider {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.lockTimeoutMs ?? 30_000;
  const shared = opts.shared ?? createInternalShared();
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

  // Keyed under the real data path, as `file` is (pathOf): two processes given different spellings
  // of the data path (a symlink) must take the same lock for the same file.
  const withLock = <T>(file: string, fn: () => Promise<T>) => shared.locks.exclusive(dataRoot(), file, timeoutMs, fn);

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

  const files = new DataFiles(shared.cache, log);
  const deps: StoreDeps = { files, updates: new FileUpdates(files, withLock), withLock, pathOf, listUsers };

  return {
    name: "internal",
    pathOf,
    open(store: string, type: StoreType): Store | undefined {
      if (type === "keyval") return keyvalStore(deps, store);
      if (type === "map") return mapStore(deps, store);
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
        await withLock(dat, () => files.write(dat, undefined));
        await fsp.rm(path.join(hostDir(), e.name, base + ".list"), { force: true }).catch((err) => {
          if (errCode(err) !== "ENAMETOOLONG") throw err; // a name that long cannot exist
        });
      }
    },
  };
}
