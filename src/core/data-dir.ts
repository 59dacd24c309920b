/**
 * Where a config puts the data directory, its plugin folders and the certificates: small and free
 * of the runtime, so prosodyctl can find the admin socket (in the data directory) and answer
 * `about` before loading anything else.
 */
import { isAbsolute, resolve } from "node:path";
import type { Config } from "./config/index.js";

/** The `plugin_paths` directories, absolute (relative ones are under the data directory). */
export function pluginPathsOf(config: Config, dataDir: string): string[] {
  const v = config.get("*", "plugin_paths");
  const list = Array.isArray(v) ? v : typeof v === "string" ? [v] : [];
  return list
    .filter((p): p is string => typeof p === "string")
    .map((p) => (isAbsolute(p) ? p : resolve(dataDir, p)));
}

/**
 * The data directory: `data_path` resolved against `cwd`, else the default decided when the
 * config was found (Debian's /var/lib/prosody for a system config, $PROSODY_TS_DATA_DIR), else
 * `./data`.
 */
export function dataDirOf(config: Config, cwd: string): string {
  const dataPath = config.get("*", "data_path");
  if (typeof dataPath === "string") return resolve(cwd, dataPath);
  return config.pathDefaults?.data?.path ?? resolve(cwd, "data");
}

/**
 * The certificates directory as Prosody's certmanager finds it: option `certificates` (global),
 * default "certs", relative to the config directory (so /etc/prosody/certs for a system config).
 */
export function certificatesDirOf(config: Config, configDir: string): { path: string; origin: string } {
  const opt = config.get("*", "certificates");
  if (typeof opt === "string" && opt !== "") {
    return { path: isAbsolute(opt) ? opt : resolve(configDir, opt), origin: "option certificates" };
  }
  return { path: resolve(configDir, "certs"), origin: "the default: certs in the config directory" };
}
