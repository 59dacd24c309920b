/**
 * Whether a file or directory may be trusted by a process running as root: a config file, an
 * included file, a plugin folder or a plugin file is code (or decides which code runs), so
 * nobody but root and the user we run as may be able to change it, nor any directory on the
 * way to it (whoever can write a directory can swap what is inside).
 *
 * The rules, checked on every component of the path after following symlinks the way the
 * kernel does (each link's own directory, then its target):
 * - every directory and the object itself is owned by a trusted uid (root, or the user the
 *   process switches to);
 * - nothing is writable by "others", nor by a group other than a trusted gid (root's group, or
 *   the group the process switches to): members of another group are other people;
 * - exception: a directory on the way (not the object itself) writable by others but with the
 *   sticky bit (`/tmp`) is fine when the entry we take from it is owned by a trusted uid (only
 *   that owner and root can rename or remove it there);
 * - the object itself, when checked as a tree (a plugin folder), has every file and directory
 *   under it checked the same way.
 *
 * Not covered: POSIX ACLs beyond the mode's group bits, and files a plugin imports from outside
 * its own folder (other than this package).
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";

export interface TrustPolicy {
  /** Owners that are trusted: root, and the user the process runs as. */
  uids: readonly number[];
  /** Groups whose write permission is acceptable: root's, and the group the process runs as. */
  gids: readonly number[];
}

/** A path a root process refused to load code from; the message is one line. */
export class UntrustedPathError extends Error {
  override name = "UntrustedPathError";
}

/** Kernel limit on symlinks followed while resolving one path (Linux MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * Returns why `path` cannot be trusted under `policy` (one line naming the culprit path), or
 * undefined when it can. `tree`: also check everything below a directory.
 * @example checkTrustedPath("/etc/prosody/prosody.cfg.lua", { uids: [0, 108], gids: [0, 115] })
 */
export function checkTrustedPath(path: string, policy: TrustPolicy, opts: { tree?: boolean } = {}): string | undefined {
  return checkPath(resolve(path), policy, opts.tree ? new Set() : undefined);
}

// --- internal ---

/** `seen`: directories already checked as trees (dev:ino), so links back up cannot loop. */
function checkPath(path: string, policy: TrustPolicy, seen: Set<string> | undefined): string | undefined {
  const walked = walk(path, policy);
  if (typeof walked === "string") return walked;
  if (!seen || !walked.isDirectory()) return undefined;
  const id = `${walked.dev}:${walked.ino}`;
  if (seen.has(id)) return undefined;
  seen.add(id);
  return checkTree(path, policy, seen, 0);
}

/** Follows `path` component by component; returns the final Stats, or the problem. */
function walk(path: string, policy: TrustPolicy): Stats | string {
  let current = "/";
  let currentStat = lstatOrProblem("/");
  if (typeof currentStat === "string") return currentStat;
  const rootProblem = objectProblem("/", currentStat, policy, true);
  if (rootProblem) return rootProblem;
  const pending = path.split("/").filter((c) => c !== "");
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === ".") continue;
    if (name === "..") {
      // current is already a physical path, so its parent is what the kernel would use.
      current = resolve(current, "..");
      const st = lstatOrProblem(current);
      if (typeof st === "string") return st;
      currentStat = st;
      continue;
    }
    const entry = join(current, name);
    const st = lstatOrProblem(entry);
    if (typeof st === "string") return st;
    // In a directory others may write to, only the sticky bit keeps them from replacing the
    // entry, and only if they do not own it.
    if (isLoose(currentStat, policy) && !policy.uids.includes(st.uid)) {
      return `${entry} is owned by ${userName(st.uid)} in ${current}, which ${looseWho(currentStat)} can write to`;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) return `${path}: Too many levels of symbolic links`;
      let target: string;
      try {
        target = readlinkSync(entry);
      } catch (err) {
        return `cannot check ${entry}: ${(err as Error).message}`;
      }
      pending.unshift(...target.split("/").filter((c) => c !== ""));
      if (isAbsolute(target)) {
        current = "/";
        currentStat = lstatSync("/");
      }
      continue;
    }
    const last = pending.length === 0;
    if (!last && !st.isDirectory()) return `${entry} is not a directory`;
    const problem = objectProblem(entry, st, policy, !last);
    if (problem) return problem;
    current = entry;
    currentStat = st;
  }
  // The path may end on ".." or a link to "/", checked so far only as a directory on the way.
  return objectProblem(current, currentStat, policy, false) ?? currentStat;
}

/** Every entry below `dir` (already checked itself). */
function checkTree(dir: string, policy: TrustPolicy, seen: Set<string>, depth: number): string | undefined {
  if (depth > 64) return `${dir}: directory tree too deep to check`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    return `cannot check ${dir}: ${(err as Error).message}`;
  }
  for (const name of names.sort()) {
    const entry = join(dir, name);
    const st = lstatOrProblem(entry);
    if (typeof st === "string") return st;
    if (st.isSymbolicLink()) {
      // A link inside the folder may point anywhere: the target's whole path must be trusted.
      const problem = checkPath(entry, policy, seen);
      if (problem) return problem;
      continue;
    }
    const problem = objectProblem(entry, st, policy, false);
    if (problem) return problem;
    if (st.isDirectory() && !seen.has(`${st.dev}:${st.ino}`)) {
      seen.add(`${st.dev}:${st.ino}`);
      const below = checkTree(entry, policy, seen, depth + 1);
      if (below) return below;
    }
  }
  return undefined;
}

/** Owner and write bits of one file or directory; `onTheWay`: a sticky loose directory passes. */
function objectProblem(path: string, st: Stats, policy: TrustPolicy, onTheWay: boolean): string | undefined {
  if (!policy.uids.includes(st.uid)) {
    return `${path} is owned by ${userName(st.uid)}, not by ${policy.uids.map(userName).join(" or ")}`;
  }
  if (isLoose(st, policy) && !(onTheWay && st.isDirectory() && (st.mode & 0o1000) !== 0)) {
    return `${path} is writable by ${looseWho(st)} (mode ${(st.mode & 0o7777).toString(8).padStart(4, "0")})`;
  }
  return undefined;
}

/** Writable by someone outside the trusted owners and groups. */
function isLoose(st: Stats, policy: TrustPolicy): boolean {
  return (st.mode & 0o002) !== 0 || ((st.mode & 0o020) !== 0 && !policy.gids.includes(st.gid));
}

function looseWho(st: Stats): string {
  return (st.mode & 0o002) !== 0 ? "every user" : `group ${groupName(st.gid)}`;
}

function lstatOrProblem(path: string): Stats | string {
  try {
    return lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "No such file or directory" : code === "EACCES" ? "Permission denied" : (err as Error).message;
    return `cannot check ${path}: ${why}`;
  }
}

/** "uid 65534 (nobody)": names from /etc/passwd and /etc/group, for messages only. */
function userName(uid: number): string {
  const name = lookupName("/etc/passwd", uid);
  return name ? `${name} (uid ${uid})` : `uid ${uid}`;
}

function groupName(gid: number): string {
  const name = lookupName("/etc/group", gid);
  return name ? `${name} (gid ${gid})` : `gid ${gid}`;
}

function lookupName(file: string, id: number): string | undefined {
  try {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields.length > 2 && fields[2] === String(id)) return fields[0];
    }
  } catch {
    // no names: the number says it
  }
  return undefined;
}
