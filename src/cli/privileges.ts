/**
 * Like prosodyctl, a process started as root switches to `prosody_user` (default "prosody") and
 * `prosody_group` before it touches any data, so files stay owned by and readable for a Prosody
 * sharing them; umask 027 (option `umask`) gives Prosody's 0640 files / 0750 directories.
 * Skipped with `--root` or `run_as_root = true`, and for the embedded default config (a local
 * trial run in the current directory, not a system install).
 */
import type { Config } from "../core/config/index.js";

export type PrivilegeResult = { switched: false; reason: string } | { switched: true; user: string; group: string } | { error: string };

export function dropPrivileges(config: Config, opts: { root: boolean }): PrivilegeResult {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return { switched: false, reason: "not running as root" };
  if (opts.root) return { switched: false, reason: "--root given" };
  if (config.get("*", "run_as_root") === true) return { switched: false, reason: "run_as_root = true" };
  if (config.source === "embedded") return { switched: false, reason: "embedded default config" };
  const userOpt = config.get("*", "prosody_user");
  const groupOpt = config.get("*", "prosody_group");
  const user = typeof userOpt === "string" ? userOpt : "prosody";
  try {
    const group = typeof groupOpt === "string" ? groupOpt : user;
    (process as unknown as { initgroups?: (u: string, g: string) => void }).initgroups?.(user, group);
    process.setgid!(group);
    process.setuid!(user);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // Without the default user there is nobody to switch to: carry on as root, as a fresh
    // machine without the prosody package would. An explicitly configured user must exist.
    if (userOpt === undefined && /unknown|does not exist|ENOENT|EPERM.*setuid/i.test(msg)) {
      return { switched: false, reason: `user '${user}' does not exist` };
    }
    return { error: `Failed to switch to user '${user}'${typeof groupOpt === "string" ? ` / group '${groupOpt}'` : ""}: ${msg}` };
  }
  const umask = config.get("*", "umask");
  process.umask(typeof umask === "string" && /^[0-7]{3,4}$/.test(umask) ? parseInt(umask, 8) : 0o027);
  return { switched: true, user, group: typeof groupOpt === "string" ? groupOpt : user };
}
