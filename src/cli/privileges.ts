/**
 * Like prosodyctl, a process started as root switches to `prosody_user` (default "prosody") and
 * `prosody_group` (default: the user's name) before it touches any data, so files stay owned by
 * and readable for a Prosody sharing them; umask 027 (option `umask`) gives Prosody's 0640 files
 * / 0750 directories.
 *
 * Root is kept only with `--root` or `run_as_root = true`, and for the embedded default config
 * (a local trial run in the current directory as whoever runs it, not a system install). When
 * the user or group does not exist we refuse, as Prosody's server does ("Refusing to run as
 * root"); Prosody's prosodyctl only warns and goes on as root, but ours runs plugin code, so
 * going on would run it as root.
 */
import type { Config } from "../core/config/index.js";
import type { TrustPolicy } from "../core/trusted-paths.js";

export type PrivilegePlan =
  | { stay: true; reason: string; root: boolean }
  | { stay: false; user: string | number; group: string | number; uid: number; gid: number }
  | { error: string };

export const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

/** Decides, without changing anything, whether and to whom this process will switch. */
export function planPrivileges(config: Config, opts: { root: boolean }): PrivilegePlan {
  if (!isRoot()) return { stay: true, reason: "not running as root", root: false };
  if (opts.root) return { stay: true, reason: "--root given", root: true };
  if (config.get("*", "run_as_root") === true) return { stay: true, reason: "run_as_root = true", root: true };
  if (config.file === null) return { stay: true, reason: "embedded default config", root: true };
  const userOpt = config.get("*", "prosody_user");
  const groupOpt = config.get("*", "prosody_group");
  const user = isId(userOpt) ? userOpt : "prosody";
  const group = isId(groupOpt) ? groupOpt : user;
  const ids = resolveIds(user, group);
  if ("error" in ids) {
    // COMPAT: the first line is prosodyctl's warning (pposix's error codes), the second its
    // server's refusal.
    return {
      error:
        `Couldn't switch to Prosody user/group '${user}'/'${group}': ${ids.error}\n` +
        "Refusing to run as root (pass --root or set run_as_root = true to allow it; see https://prosody.im/doc/root)",
    };
  }
  return { stay: false, user, group, ...ids };
}

/** Who may own (and which groups may write) the files a root-started process trusts. */
export function trustPolicyFor(plan: Exclude<PrivilegePlan, { error: string }>): TrustPolicy {
  return plan.stay ? { uids: [0], gids: [0] } : { uids: [...new Set([0, plan.uid])], gids: [...new Set([0, plan.gid])] };
}

/** Switches to the planned user and group; returns the error line, if any. */
export function switchUser(plan: Extract<PrivilegePlan, { stay: false }>, config: Config): string | undefined {
  try {
    (process as unknown as { initgroups?: (u: string | number, g: string | number) => void }).initgroups?.(plan.user, plan.gid);
    process.setgid!(plan.gid);
    process.setuid!(plan.uid);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    return `Couldn't switch to Prosody user/group '${plan.user}'/'${plan.group}': ${msg}`;
  }
  const umask = config.get("*", "umask");
  process.umask(typeof umask === "string" && /^[0-7]{3,4}$/.test(umask) ? parseInt(umask, 8) : 0o027);
  return undefined;
}

// --- internal ---

function isId(v: unknown): v is string | number {
  return (typeof v === "string" && v !== "") || (typeof v === "number" && Number.isInteger(v) && v >= 0);
}

/**
 * Numeric ids for a user and group name. Node has no getpwnam(); seteuid/setegid look names up
 * the same way setuid does and, while the real uid is 0, can be undone at once.
 */
function resolveIds(user: string | number, group: string | number): { uid: number; gid: number } | { error: string } {
  let uid: number;
  let gid: number;
  // COMPAT: the group first, as Prosody's setgid-then-setuid does, so a missing default user
  // and group gives Prosody's "no-such-group".
  try {
    process.setegid!(group);
    gid = process.getegid!();
  } catch (err) {
    return { error: unknownOr(err, "no-such-group") };
  } finally {
    process.setegid!(0);
  }
  try {
    process.seteuid!(user);
    uid = process.geteuid!();
  } catch (err) {
    return { error: unknownOr(err, "no-such-user") };
  } finally {
    process.seteuid!(0);
  }
  return { uid, gid };
}

function unknownOr(err: unknown, code: string): string {
  if ((err as NodeJS.ErrnoException).code === "ERR_UNKNOWN_CREDENTIAL") return code;
  return err instanceof Error ? err.message : String(err);
}
