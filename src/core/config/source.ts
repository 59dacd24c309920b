/** How a config was found, in words: for the server's first log line and `prosodyctl about`. */
import type { Config } from "./types.js";

export function describeConfigSource(config: Config): string {
  switch (config.source) {
    case "embedded":
      return "no config file found (tried --config, PROSODY_CONFIG, ./prosody.cfg.lua, the system config): using the embedded default config";
    case "embedded-option":
      return "using the embedded default config (from --embedded-config)";
    case "system":
      return `using config file ${config.file} (the system config)`;
    case "argument":
      return `using config file ${config.file} (from --config)`;
    case "PROSODY_CONFIG":
      return `using config file ${config.file} (from PROSODY_CONFIG)`;
    default:
      return `using config file ${config.file} (found in the working directory)`;
  }
}
