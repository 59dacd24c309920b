/**
 * `prosodyctl about`: every path this host uses and where each came from (an option, a default,
 * an environment variable), in the layout of Prosody's own `about`, so an admin can see at once
 * whether it shares the real server's data.
 */
import { statSync } from "node:fs";
import type { Config } from "../core/config/index.js";
import { PACKAGE_ROOT } from "../core/paths.js";
import { certificatesDirOf, type Runtime } from "../core/runtime.js";
import { describeConfigSource } from "../server.js";
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

/** The text of `about` for a loaded config and the runtime made from it. */
export function aboutText(config: Config, rt: Runtime): string {
  const embedded = config.file === null;
  const lines = [versionLine(), "", "# Paths"];
  const row = (label: string, value: string, origin: string) => lines.push(`${`${label}:`.padEnd(20)}${value} (${origin})`);

  row("Config file", config.file ?? "none", describeConfigSource(config).replace(/^using config file \S+ \((.*)\)$/, "$1"));
  row("Config directory", rt.paths.config, embedded ? "the working directory: no config file" : "the directory of the config file");
  row("Data directory", rt.paths.data, dataOrigin(config));
  const certs = certificatesDirOf(config, rt.paths.config);
  row("Certificates", checked(certs.path), certs.origin);
  lines.push("Plugin directories:");
  for (const dir of rt.pluginPaths()) lines.push(`  ${checked(dir)} (option plugin_paths; JavaScript plugins only)`);
  lines.push(`  ${checked(rt.paths.plugins)} (bundled with prosody-ts)`);
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
