/**
 * What a process started as root checks before it uses a config: every file the config was read
 * from (the main file and each Include), each existing `plugin_paths` folder and this package's
 * plugins folder must be trusted (src/core/trusted-paths.ts: owned by root or the user we switch
 * to, writable by nobody else, and the same for every directory on the way). Each plugin's own
 * folder is checked when it is loaded (ModuleManager), since which plugins load is only known
 * then.
 *
 * Without this, `prosodyctl` run as root in a directory others can write to would load a
 * planted ./prosody.cfg.lua and its plugin_paths, i.e. run their JavaScript as root.
 *
 * A process that stays root (--root, run_as_root = true, the embedded default) also checks where
 * it will write: the data directory and each SQLite database's directory (or, when they do not
 * exist yet, the directory they will be created in). Root writing into a directory another user
 * controls would follow that user's symlinks and overwrite whatever they point to. A process that
 * switched to prosody_user writes only where that user may write anyway, so that needs no check.
 *
 * A process that is not root checks nothing more than before: it can only load what its own
 * user may already run, so a planted file hurts nobody but that user, who put it in reach.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Config } from "../core/config/index.js";
import { BUNDLED_PLUGINS_DIR } from "../core/paths.js";
import { dataDirOf, pluginPathsOf } from "../core/data-dir.js";
import { checkTrustedPath, type TrustPolicy } from "../core/trusted-paths.js";

/** Returns the one-line refusal, or undefined when everything the config names may be used. */
export function checkConfigTrust(config: Config, cwd: string, policy: TrustPolicy, opts: { stayingRoot: boolean }): string | undefined {
  for (const [i, file] of config.files.entries()) {
    const problem = checkTrustedPath(file, policy);
    if (problem) return `Refusing to use ${i === 0 ? "config file" : "included config file"} ${file} as root: ${problem}`;
  }
  for (const dir of pluginPathsOf(config, dataDirOf(config, cwd))) {
    // A folder that does not exist loads nothing; if it appears later, each plugin taken from
    // it is checked when loaded.
    if (!existsSync(dir)) continue;
    const problem = checkTrustedPath(dir, policy);
    if (problem) return `Refusing to use plugin folder ${dir} (plugin_paths) as root: ${problem}`;
  }
  if (existsSync(BUNDLED_PLUGINS_DIR)) {
    const problem = checkTrustedPath(BUNDLED_PLUGINS_DIR, policy);
    if (problem) return `Refusing to use the bundled plugins in ${BUNDLED_PLUGINS_DIR} as root: ${problem}`;
  }
  if (opts.stayingRoot) {
    for (const { what, dir } of writtenDirs(config, cwd)) {
      let existing = dir;
      while (!existsSync(existing)) existing = dirname(existing);
      const problem = checkTrustedPath(existing, policy);
      if (problem) return `Refusing to use ${what} ${dir} as root: ${problem}`;
    }
  }
  return undefined;
}

// --- internal ---

/** The data directory, and the directory of every SQLite database the config names. */
function writtenDirs(config: Config, cwd: string): Array<{ what: string; dir: string }> {
  const data = dataDirOf(config, cwd);
  const out = [{ what: "data directory", dir: data }];
  for (const host of ["*", ...config.hosts()]) {
    const sql = config.get(host, "sql");
    const database = sql && typeof sql === "object" && !Array.isArray(sql) ? (sql as Record<string, unknown>).database : undefined;
    if (typeof database !== "string" || database === "") continue;
    const dir = dirname(resolve(data, database));
    if (!out.some((o) => o.dir === dir)) out.push({ what: "the directory of SQLite database", dir });
  }
  return out;
}
