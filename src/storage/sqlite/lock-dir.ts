/**
 * The directory that holds our cross-process locks and "database open" markers:
 * `<data directory>/.prosody-ts-locks`. Each lock ticket or marker is a listening unix socket in it.
 *
 * Why a directory: a unix socket bound to a path is reachable only through that path, so the
 * directory's permissions decide who can create, connect to or remove entries. It is created with
 * the data directory's owner and group and lets in exactly who may write the data directory: the
 * owner, the group only if the data directory is group-writable (others only if it is
 * world-writable). An existing directory that lets in anyone else is refused, not repaired: an
 * outsider may already hold live sockets in it, which a chmod would not evict.
 *
 * Socket paths are limited to 107 bytes: where `<lock dir>/<entry name>` is longer, sockets are bound
 * and connected as `/proc/self/fd/<fd>/<name>` through a descriptor of the directory kept open for
 * the life of the process (slower: procfs lookups). Linux only.
 *
 * An entry is only ever given its final name (by rename) after its socket listens, and names are
 * never reused (each carries a random part). So a connection refused by an entry means its owner
 * closed it or died, for good: any process may then unlink it.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { StorageError } from "../types.js";

export const LOCK_DIR_NAME = ".prosody-ts-locks";

/** Mode of a data directory we create because it is missing (Prosody's 0750 directories). */
const DATA_DIR_MODE = 0o750;

const isRoot = () => process.getuid?.() === 0;
const errCode = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;
const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));
const octal = (mode: number) => "0" + (mode & 0o7777).toString(8);
const looks = (lockDir: fs.Stats, dataDir: fs.Stats) =>
  [lockDir.dev, lockDir.ino, lockDir.mode, lockDir.uid, lockDir.gid, dataDir.mode, dataDir.uid, dataDir.gid].join(":");

/** Creates `dir` and missing parents like the internal driver does: 0750, as root owned like its parent. */
function makeDataDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: DATA_DIR_MODE });
  } catch (err) {
    if (errCode(err) === "EEXIST") return;
    if (errCode(err) !== "ENOENT" || path.dirname(dir) === dir) throw err;
    makeDataDir(path.dirname(dir));
    return makeDataDir(dir);
  }
  fs.chmodSync(dir, DATA_DIR_MODE);
  if (isRoot()) {
    const parent = fs.statSync(path.dirname(dir));
    fs.chownSync(dir, parent.uid, parent.gid);
  }
}

/** A random part for entry names: never repeats, so a name is never re-created once removed. */
export const randomName = () => crypto.randomBytes(9).toString("base64url");

/**
 * Short stable digest of what is locked (a file), used in entry names (12 characters: two keys
 * sharing one would only share a lock).
 */
export const keyDigest = (key: string) => crypto.createHash("sha256").update(key).digest().subarray(0, 9).toString("base64url");

/** Longest entry name we create (`w.<digest>.<ticket>.<random>`), for the socket path limit. */
const MAX_NAME = 48;
const MAX_SOCKET_PATH = 107;

export type Probe =
  /** Someone listens: the socket stays connected until its owner lets go (or dies). */
  | { state: "live"; sock: net.Socket }
  /** The owner closed it or died (connection refused): the entry may be unlinked. */
  | { state: "dead" }
  /** The entry no longer exists. */
  | { state: "gone" }
  /** Its backlog is full: live, try again shortly. */
  | { state: "busy" }
  /** It was listening, and closed before accepting us: probe again to learn which it is now. */
  | { state: "closing" };

export class LockDir {
  private constructor(
    /** `<data dir>/.prosody-ts-locks`, for messages and for checking it was not replaced. */
    readonly path: string,
    private readonly fd: number,
    /** Prefix that reaches entries for bind() and connect(): the path, or through the descriptor. */
    private readonly base: string,
    /**
     * Our sockets must be writable for others than us (connecting needs it): the group's members,
     * or, when we are root, the directory's owner.
     */
    private readonly shared: boolean,
    /** Identity, owners and modes of the lock directory and the data directory, as checked. */
    private readonly look: string,
  ) {}

  private static readonly cache = new Map<string, LockDir>();

  /**
   * The lock directory of `dataDir`, created if missing (and `dataDir` too). Throws a StorageError
   * saying why when it cannot be used (not Linux, not writable for us, unsafe owner or mode).
   */
  static of(dataDir: string): LockDir {
    const dir = path.join(path.resolve(dataDir), LOCK_DIR_NAME);
    const cached = LockDir.cache.get(dir);
    if (cached && cached.stillThere()) return cached;
    const opened = LockDir.open(dir);
    // A replaced directory's descriptor stays open: sockets bound through it may still be closing.
    LockDir.cache.set(dir, opened);
    setImmediate(() => void opened.sweep());
    return opened;
  }

  /**
   * Removes entries left by processes that died (kill -9) and that nobody else would remove: a
   * lock nobody takes again, a temporary name. Once per directory per process, in the background,
   * and only entries created over a minute ago (a probe looks like a waiter to a live holder).
   */
  private async sweep(): Promise<void> {
    try {
      const old = Date.now() - 60_000;
      for (const name of this.list().slice(0, 1000)) {
        if (!/^[two]\./.test(name)) continue;
        const st = fs.lstatSync(`${this.path}/${name}`, { throwIfNoEntry: false });
        if (!st || st.mtimeMs > old) continue;
        const probe = await this.probe(name);
        if (probe.state === "live") probe.sock.destroy();
        else if (probe.state === "dead") this.unlink(name);
      }
    } catch {
      // only tidying: the next process tries again
    }
  }

  /** Neither the lock directory nor the data directory's owner or mode changed since we checked. */
  private stillThere(): boolean {
    const st = fs.statSync(this.path, { throwIfNoEntry: false });
    const data = fs.statSync(path.dirname(this.path), { throwIfNoEntry: false });
    return st !== undefined && data !== undefined && looks(st, data) === this.look;
  }

  private static open(dir: string): LockDir {
    if (process.platform !== "linux") {
      throw new StorageError(`${dir}: cross-process locks need Linux (unix sockets reached through /proc/self/fd); ${process.platform} is not supported`);
    }
    const dataDir = path.dirname(dir);
    let data: fs.Stats;
    try {
      makeDataDir(dataDir);
      data = fs.statSync(dataDir);
    } catch (err) {
      throw new StorageError(`${dataDir}: cannot create or read the data directory: ${errMsg(err)}`);
    }
    // Who may write the data directory may use the locks: its owner (and root), its group if the
    // group may write it, everyone if everyone may.
    const allowed = 0o700 | (data.mode & 0o020 ? 0o070 : 0) | (data.mode & 0o002 ? 0o007 : 0);
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
      // New: give it the data directory's owner and the wanted mode (the umask may have taken bits).
      try {
        if (isRoot()) fs.chownSync(dir, data.uid, data.gid);
        else if (allowed & 0o070) fs.chownSync(dir, -1, data.gid);
        fs.chmodSync(dir, allowed);
      } catch (err) {
        fs.rmdirSync(dir);
        throw err;
      }
    } catch (err) {
      if (errCode(err) !== "EEXIST") {
        const who = errCode(err) === "EACCES" || errCode(err) === "EPERM" ? " (only the owner of the data directory, and its group if it may write there, can take our locks)" : "";
        throw new StorageError(`${dir}: cannot create the lock directory: ${errMsg(err)}${who}`);
      }
    }
    let fd: number;
    try {
      fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      const code = errCode(err);
      const why =
        code === "ELOOP" || code === "ENOTDIR"
          ? "it is not a directory (or is a symbolic link)"
          : errMsg(err) + (code === "EACCES" ? " (only the owner of the data directory, and its group if it may write there, can take our locks)" : "");
      throw new StorageError(`${dir}: cannot use it as our lock directory: ${why}`);
    }
    try {
      let st = fs.fstatSync(fd);
      const remedy = `remove it (rm -r ${dir}) while none of our processes runs; it is created again with the right owner and mode`;
      // Its owner can change its mode: it must be someone who may write the data directory. That
      // is the data directory's owner or root, or, where others may write it too, whoever created it.
      if (st.uid !== data.uid && st.uid !== 0 && !(allowed & 0o077)) {
        throw new StorageError(`${dir}: owned by uid ${st.uid}, not by the data directory's owner (uid ${data.uid}) or root: refusing to use it for locks (its owner could block or fake them); ${remedy}`);
      }
      const extra = st.mode & 0o777 & ~allowed;
      const foreignGroup = (st.mode & 0o070) !== 0 && st.gid !== data.gid;
      if (extra || foreignGroup) {
        throw new StorageError(
          `${dir}: mode ${octal(st.mode)}${foreignGroup ? ` and group ${st.gid}` : ""} let in users who may not write ${dataDir} (mode ${octal(data.mode)}, group ${data.gid}): refusing to use it for locks (they could block or fake them); ${remedy}`,
        );
      }
      if ((st.mode & allowed) !== allowed && (isRoot() || st.uid === process.getuid?.())) {
        // The data directory became group-writable since: let the group in too.
        if (allowed & 0o070 && st.gid !== data.gid) fs.fchownSync(fd, st.uid, data.gid);
        fs.fchmodSync(fd, (st.mode & 0o7000) | allowed);
        st = fs.fstatSync(fd);
      } else if (isRoot() && st.uid !== data.uid) {
        // Created by root for a data directory owned by someone else (e.g. an older run as root).
        fs.fchownSync(fd, data.uid, data.gid);
        st = fs.fstatSync(fd);
      }
      const viaFd = `/proc/self/fd/${fd}`;
      let base = dir;
      if (Buffer.byteLength(dir) + 1 + MAX_NAME > MAX_SOCKET_PATH) {
        if (fs.statSync(viaFd, { throwIfNoEntry: false })?.ino !== st.ino) {
          throw new StorageError(`${dir}: the path is too long for a unix socket and /proc is not mounted: cannot take cross-process locks`);
        }
        base = viaFd;
      }
      const shared = (allowed & 0o077) !== 0 || (isRoot() && st.uid !== 0);
      return new LockDir(dir, fd, base, shared, looks(st, data));
    } catch (err) {
      fs.closeSync(fd);
      throw err instanceof StorageError ? err : new StorageError(`${dir}: cannot use it as our lock directory: ${errMsg(err)}`);
    }
  }

  /** Entry names, in no particular order. */
  list(): string[] {
    try {
      return fs.readdirSync(this.path);
    } catch (err) {
      throw new StorageError(`${this.path}: cannot list the lock directory: ${errMsg(err)}`);
    }
  }

  /**
   * A socket listening under a fresh temporary name `t.<random>` (nobody looks for it there).
   * Rejects with a StorageError.
   */
  async listen(onConnection: (sock: net.Socket) => void): Promise<{ server: net.Server; name: string }> {
    const name = `t.${randomName()}`;
    const server = net.createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => reject(new StorageError(`${this.path}: cannot create a lock socket: ${errMsg(err)}`)));
      // Connecting needs write permission on the socket: let everyone who reaches it connect when
      // others than us use the directory (the umask may have removed the bits). The directory's
      // mode keeps outsiders away.
      server.listen({ path: `${this.base}/${name}`, readableAll: this.shared, writableAll: this.shared }, resolve);
    });
    server.removeAllListeners("error");
    server.on("error", () => {});
    return { server, name };
  }

  /** Renames an entry (atomically: it is never missing, never under both names). */
  rename(from: string, to: string): void {
    try {
      fs.renameSync(`${this.path}/${from}`, `${this.path}/${to}`);
    } catch (err) {
      throw new StorageError(`${this.path}: cannot rename the lock entry ${from} to ${to}: ${errMsg(err)}`);
    }
  }

  /**
   * Listens on a temporary name, then gives the socket its final name, `nameOf()` called at that
   * moment: connections can only reach it under that name once it listens.
   */
  async publish(nameOf: () => string, onConnection: (sock: net.Socket) => void): Promise<{ server: net.Server; name: string }> {
    const { server, name: tmp } = await this.listen(onConnection);
    try {
      const name = nameOf();
      this.rename(tmp, name);
      return { server, name };
    } catch (err) {
      server.close();
      this.unlink(tmp);
      throw err;
    }
  }

  /** Removes an entry (ours, or one that refused a connection). Missing is fine. */
  unlink(name: string): void {
    try {
      fs.unlinkSync(`${this.path}/${name}`);
    } catch {
      // already gone (another process cleaned it up), or not ours to remove: harmless either way
    }
  }

  /** Connects to an entry to learn whether its owner is alive. */
  probe(name: string): Promise<Probe> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ path: `${this.base}/${name}` });
      const onError = (err: NodeJS.ErrnoException) => {
        sock.destroy();
        if (err.code === "ECONNREFUSED") resolve({ state: "dead" });
        else if (err.code === "ENOENT") resolve({ state: "gone" });
        else if (err.code === "EAGAIN") resolve({ state: "busy" });
        else if (err.code === "ECONNRESET" || err.code === "EPIPE") resolve({ state: "closing" });
        else reject(new StorageError(`${this.path}: cannot connect to the lock entry ${name}: ${err.message}`));
      };
      sock.once("error", onError);
      sock.once("connect", () => {
        sock.off("error", onError);
        resolve({ state: "live", sock });
      });
    });
  }
}
