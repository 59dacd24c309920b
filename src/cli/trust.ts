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
 * A process that is not root checks nothing more than before: it can only load what its own
 * user may already run, so a planted file hurts nobody but that user, who put it in reach.
 */
import { existsSync } from "node:fs";
import type { Config } from "../core/config/index.js";
import { BUNDLED_PLUGINS_DIR } from "../core/paths.js";
import { dataDirOf, pluginPathsOf } from "../core/runtime.js";
import { checkTrustedPath, type TrustPolicy } from "../core/trusted-paths.js";

/** Returns the one-line refusal, or undefined when everything the config names may be used. */
export function checkConfigTrust(config: Config, cwd: string, policy: TrustPolicy): string | undefined {
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
  return undefined;
}
