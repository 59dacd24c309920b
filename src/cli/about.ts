/**
 * `prosodyctl about`: every path this host uses and where each came from (an option, a default,
 * an environment variable), in the layout of Prosody's own `about`, so an admin can see at once
 * whether it shares the real server's data. Needs only the config (no runtime, no storage), so
 * the executable answers it before loading the rest of prosodyctl (src/cli/startup.ts).
 */
import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { describeConfigSource, type Config } from "../core/config/index.js";
import { certificatesDirOf, dataDirOf, pluginPathsOf } from "../core/data-dir.js";
import { BUNDLED_PLUGINS_DIR, PACKAGE_ROOT } from "../core/paths.js";
import { versionLine } from "./version.js";

const isDir = (p: string): boolean => {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
};

/** Prosody's marker for a listed directory that is missing. */
const checked = (p: string): string => (isDir(p) ? p : `${p} - not a directory!`);

/** The text of `about` for a loaded config; relative paths resolve against `cwd`. */
export function aboutText(config: Config, cwd: string): string {
  const embedded = config.file === null;
  // As the runtime has them (src/core/runtime.ts).
  const configDir = config.file ? dirname(resolve(cwd, config.file)) : cwd;
  const dataDir = dataDirOf(config, cwd);
  const lines = [versionLine(), "", "# Paths"];
  const row = (label: string, value: string, origin: string) => lines.push(`${`${label}:`.padEnd(20)}${value} (${origin})`);

  row("Config file", config.file ?? "none", describeConfigSource(config).replace(/^using config file \S+ \((.*)\)$/, "$1"));
  row("Config directory", configDir, embedded ? "the working directory: no config file" : "the directory of the config file");
  row("Data directory", dataDir, dataOrigin(config));
  const certs = certificatesDirOf(config, configDir);
  row("Certificates", checked(certs.path), certs.origin);
  lines.push("Plugin directories:");
  for (const dir of pluginPathsOf(config, dataDir)) lines.push(`  ${checked(dir)} (option plugin_paths; JavaScript plugins only)`);
  lines.push(`  ${checked(BUNDLED_PLUGINS_DIR)} (bundled with prosody-ts)`);
  const prosodyPlugins = config.pathDefaults?.prosodyPlugins;
  if (prosodyPlugins) {
    row("Prosody's modules", checked(prosodyPlugins.path), `${prosodyPlugins.origin}; Lua, used by Prosody only`);
  }
  row("Source directory", PACKAGE_ROOT, "this package");
  lines.push("", "# Hosts", config.hosts().join(", ") || "(none)", "");
  return lines.join("\n");
}

// --- internal ---

function dataOrigin(config: Config): string {
  if (typeof config.get("*", "data_path") === "string") {
    return config.file === null ? "option data_path of the embedded default config: ./data" : "option data_path";
  }
  return config.pathDefaults?.data?.origin ?? "the default: ./data in the working directory";
}
