/**
 * Types of the parsed prosody.cfg.lua (Prosody's core/configmanager.lua model, spec §5).
 */
import type { OptionValue } from "../types.js";
import type { PathDefaults } from "./system.js";

export type { OptionValue };

export interface ConfigSection {
  /** "*" for the global section, else the nameprepped host name. */
  name: string;
  kind: "global" | "VirtualHost" | "Component";
  /**
   * Options set in this section only. Keys are sorted, so both evaluation paths give the same
   * object. Like Prosody, a VirtualHost section carries `defined = true` and a Component
   * section `component_module` and `load_global_modules = false`.
   */
  options: Record<string, OptionValue>;
  /** File that first declared the section (the main file for "*"). */
  file: string;
  /** Line of the first `VirtualHost`/`Component` statement for the section. */
  line?: number;
}

/**
 * How the config was found: --config, $PROSODY_CONFIG, ./prosody.cfg.lua, the system config
 * (/etc/prosody/prosody.cfg.lua), or the embedded default (after the search found nothing, or
 * asked for with --embedded-config).
 */
export type ConfigSource = "argument" | "PROSODY_CONFIG" | "cwd" | "system" | "embedded" | "embedded-option";

export interface Config {
  /** null for the embedded default. */
  file: string | null;
  source: ConfigSource;
  /** "*" first, then hosts in file order. */
  sections: Map<string, ConfigSection>;
  /**
   * Every file the config was read from: the main file, then its Includes (empty for the
   * embedded default). Checked before a root process trusts them (src/cli/trust.ts).
   */
  files: readonly string[];
  /**
   * Default paths decided when the config was found (src/core/config/system.ts); unset for a
   * config loaded directly (loadConfigFile, loadConfigString): `./data` and no system install.
   */
  pathDefaults?: PathDefaults;
  /** Non-fatal problems ("<file>:<line>: Duplicate option 'x'", skipped function values…). */
  warnings: string[];
  /** Host value, else global value (unknown host → global value): Prosody's configmanager.get. */
  get(host: string, name: string): OptionValue | undefined;
  /** The raw value set in that section only. */
  getRaw(host: string, name: string): OptionValue | undefined;
  /** Every section except "*", in file order. */
  hosts(): string[];
  /** Prosody's `enabled ~= false` (looked up with the global fallback). */
  isEnabled(host: string): boolean;
}

export interface LoadOptions {
  /** Environment for ENV_NAME and os.getenv (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Receives the text of `print(...)` calls in the config (default: ignored). */
  print?: (line: string) => void;
}
