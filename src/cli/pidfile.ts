/**
 * Our pidfile, beside a real Prosody that may read the very same config file.
 *
 * Prosody writes its pid to `pidfile` (Debian: /run/prosody/prosody.pid) and systemd, logrotate
 * and Prosody's prosodyctl act on it. Writing our pid there would make `systemctl reload prosody`
 * or logrotate signal us and `prosodyctl stop` stop us, and would clobber Prosody's file. So:
 *
 * - our pidfile is `prosody_ts_pidfile` (ours; Prosody ignores it), else the `pidfile` name with
 *   "-ts" before its extension (/run/prosody/prosody.pid → /run/prosody/prosody-ts.pid); a
 *   relative path is under the data directory, as Prosody's; none when neither is set (or
 *   "posix" is in the global modules_disabled, as Prosody writes none then);
 * - the server sets its process title to "prosody-ts …", and a pid counts as ours only if
 *   /proc/<pid>/cmdline starts with that: we never signal another process, and never replace a
 *   pidfile whose live process looks like a Prosody.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import type { Config } from "../core/config/index.js";
import { createLogger } from "../core/logger.js";
import { toOptionSet } from "../core/options.js";
import { dataDirOf } from "../core/data-dir.js";

const log = createLogger("general");

/** The start of a server process's title (and so of its /proc/<pid>/cmdline). */
export const PROCESS_TITLE = "prosody-ts";

/** Prosody's messages for a config without a usable pidfile (util/prosodyctl.lua). */
export const PIDFILE_ERRORS = {
  "no-pidfile": "There is no 'pidfile' option in the configuration file, see https://prosody.im/doc/prosodyctl#pidfile for help",
  "invalid-pidfile": "The 'pidfile' option in the configuration file is not a string, see https://prosody.im/doc/prosodyctl#pidfile for help",
  "no-posix": "The mod_posix module is not enabled in the Prosody config file, see https://prosody.im/doc/prosodyctl for more info",
} as const;

export type PidfileError = keyof typeof PIDFILE_ERRORS;

/** Where our pidfile is for `config`, or why there is none. */
export function pidfilePath(config: Config, dataDir: string): { path: string; derived?: true } | { error: PidfileError } {
  const ours = config.get("*", "prosody_ts_pidfile");
  const theirs = config.get("*", "pidfile");
  const chosen = ours ?? theirs;
  if (chosen === undefined) return { error: "no-pidfile" };
  if (typeof chosen !== "string" || chosen === "") return { error: "invalid-pidfile" };
  if (toOptionSet(config.get("*", "modules_disabled"))?.has("posix")) return { error: "no-posix" };
  const full = resolve(dataDir, chosen);
  if (ours !== undefined) return { path: full };
  const ext = extname(full);
  return { path: join(dirname(full), `${basename(full, ext)}-ts${ext}`), derived: true };
}

export interface ProcessInfo {
  alive: boolean;
  /** The process title starts with "prosody-ts". */
  ours: boolean;
  /** Its command line, spaces between the arguments ("" when unknown). */
  cmdline: string;
}

export function processInfo(pid: number): ProcessInfo {
  let alive = true;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    alive = (err as NodeJS.ErrnoException).code === "EPERM";
  }
  let cmdline = "";
  if (alive) {
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "latin1").replace(/\0+$/, "").replace(/\0/g, " ");
    } catch {
      // gone meanwhile, or /proc hidden: not provably ours
    }
  }
  return { alive, ours: alive && (cmdline === PROCESS_TITLE || cmdline.startsWith(`${PROCESS_TITLE} `)), cmdline };
}

/** The pid in a pidfile; undefined when the file is missing or holds no pid. */
export function readPid(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const m = /^\s*(\d+)\s*$/.exec(text);
  const pid = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether our server runs per `path`: its pid, when the file names a live process of ours. */
export function runningPid(path: string): number | undefined {
  const pid = readPid(path);
  return pid !== undefined && processInfo(pid).ours ? pid : undefined;
}

/**
 * Writes this process's pid to `path`, created exclusively: a file naming a live server of ours,
 * or a live process that looks like a Prosody, is refused (the message says which); one naming a
 * dead process (or a pid since reused by something else) is replaced.
 */
export function claimPidfile(path: string): { ok: true } | { ok: false; message: string; code?: string } {
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o640);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") return { ok: false, message: `Couldn't write pidfile at ${path}; ${(err as Error).message}`, code };
      const pid = readPid(path);
      if (pid !== undefined && pid !== process.pid) {
        const info = processInfo(pid);
        if (info.ours) return { ok: false, message: `Another Prosody instance seems to be running with PID ${pid}, quitting` };
        if (info.alive && /prosody/i.test(info.cmdline)) {
          return { ok: false, message: `The pidfile ${path} names PID ${pid} (${info.cmdline}), not ours: quitting rather than replacing it (set prosody_ts_pidfile to a file of our own)` };
        }
      }
      try {
        unlinkSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") return { ok: false, message: `Couldn't replace stale pidfile at ${path}; ${(e as Error).message}` };
      }
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
    } finally {
      closeSync(fd);
    }
    return { ok: true };
  }
  return { ok: false, message: `Couldn't write pidfile at ${path}; another process keeps creating it` };
}

/** Removes `path` if it still holds this process's pid (a clean stop). */
export function releasePidfile(path: string): void {
  if (readPid(path) !== process.pid) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** Marks this process as our server (see the header): "prosody-ts" and the prosodyctl arguments. */
export function setServerTitle(args: readonly string[]): void {
  process.title = [PROCESS_TITLE, ...args].join(" ");
}

/**
 * The server's start: sets the process title, then claims the pidfile of `config` if it names
 * one. A number is the exit code (the reason was logged); otherwise `release` at the clean stop.
 */
export function claimServerPidfile(config: Config, cwd: string, argv: readonly string[]): { release(): void } | undefined | number {
  setServerTitle(argv);
  const where = pidfilePath(config, dataDirOf(config, cwd));
  if ("error" in where) {
    if (where.error === "invalid-pidfile") log("warn", "%s", PIDFILE_ERRORS[where.error]);
    return undefined;
  }
  const claimed = claimPidfile(where.path);
  if (!claimed.ok && where.derived && claimed.code === "ENOENT") {
    // Prosody's directory (Debian: /run/prosody, made by its unit) is not there while it is
    // stopped: a server running beside it must still start. Set prosody_ts_pidfile to have one.
    log("warn", "%s: running without a pidfile (prosodyctl status/stop/reload will not find this server; set prosody_ts_pidfile)", claimed.message);
    return undefined;
  }
  if (!claimed.ok) {
    log("error", "%s", claimed.message);
    return 1;
  }
  log("debug", "Wrote pidfile %s", where.path);
  return { release: () => releasePidfile(where.path) };
}
