/**
 * Loading prosody.cfg.lua: the declarative fast path first, the Lua sandbox when needed, and
 * Prosody's search order for the file.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { ConfigError } from "./config-error.js";
import { createConfig, embeddedDefaultConfig } from "./config.js";
import { evaluateDeclarative } from "./fast-path.js";
import { describeFsError, type RawResult } from "./_shared.js";
import { pathDefaultsFor, systemConfigPath } from "./system.js";
import type { Config, ConfigSource, LoadOptions } from "./types.js";

/** Which evaluator to use; "auto" tries the fast path and falls back to the VM. */
export type EvaluationMode = "auto" | "fast" | "vm";

/**
 * Evaluates config text. Exported for tests and benchmarks; "fast" returns undefined when the
 * file does not qualify for the fast path.
 */
export async function evaluateConfig(
  text: string | Uint8Array, fileName: string, opts: LoadOptions = {}, mode: EvaluationMode = "auto",
): Promise<RawResult | undefined> {
  if (mode !== "vm") {
    const source = typeof text === "string" ? text : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString("utf8");
    const result = evaluateDeclarative(source, fileName);
    if (result || mode === "fast") return result;
  }
  const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text;
  const { evaluateWithLua } = await import("./lua-sandbox.js");
  return evaluateWithLua(bytes, fileName, opts);
}

function readMain(file: string, origin?: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const from = origin ? ` (from ${origin})` : "";
    throw new ConfigError(`Cannot read config file ${file}${from}: ${describeFsError(err)}`, { file, cause: err });
  }
}

async function load(file: string, source: ConfigSource, opts: LoadOptions, origin?: string): Promise<Config> {
  const raw = (await evaluateConfig(readMain(file, origin), file, opts))!;
  return createConfig(file, source, raw.sections, raw.warnings, raw.files);
}

/** load(), plus the default paths that go with where the file was found. */
async function loadFound(file: string, source: ConfigSource, opts: LoadOptions, cwd: string, origin?: string): Promise<Config> {
  const config = await load(file, source, opts, origin);
  config.pathDefaults = pathDefaultsFor(file, opts.env ?? process.env, cwd);
  return config;
}

/**
 * Loads a config file (path resolved against the working directory). Throws ConfigError with a
 * one-line "file:line: reason" message.
 * @example const config = await loadConfigFile("/etc/prosody/prosody.cfg.lua");
 */
export function loadConfigFile(path: string, opts: LoadOptions = {}): Promise<Config> {
  return load(resolve(path), "argument", opts);
}

/**
 * Evaluates config text as if read from `fileName` (which names it in messages and anchors
 * relative Includes).
 * @example await loadConfigString('VirtualHost "example.com"', "test.cfg.lua")
 */
export async function loadConfigString(text: string, fileName: string, opts: LoadOptions = {}): Promise<Config> {
  const raw = (await evaluateConfig(text, fileName, opts))!;
  return createConfig(fileName, "argument", raw.sections, raw.warnings, raw.files);
}

/**
 * Finds and loads the config: `explicit` (--config FILE, extracted by the caller), else env
 * PROSODY_CONFIG, else ./prosody.cfg.lua in `cwd`, else the system config
 * (/etc/prosody/prosody.cfg.lua; $PROSODY_TS_SYSTEM_CONFIG moves it, "" skips it), else the
 * embedded default. `embedded` (--embedded-config) takes the embedded default without searching.
 * A file named by --config or PROSODY_CONFIG must exist.
 * @example await findAndLoadConfig({ explicit: argv.config, env: process.env, cwd: process.cwd() })
 */
export async function findAndLoadConfig(
  opts: { explicit?: string; embedded?: boolean; env?: NodeJS.ProcessEnv; cwd?: string; print?: LoadOptions["print"] } = {},
): Promise<Config> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const loadOpts: LoadOptions = { env, print: opts.print };
  if (opts.embedded) {
    if (opts.explicit) throw new ConfigError("--config and --embedded-config name two different configs: give one of them");
    return withDefaults(embeddedDefaultConfig(cwd, "embedded-option"), env, cwd);
  }
  if (opts.explicit !== undefined && opts.explicit !== "") {
    return loadFound(explicitFile(opts.explicit, cwd, env), "argument", loadOpts, cwd, "--config");
  }
  const fromEnv = env.PROSODY_CONFIG;
  if (fromEnv !== undefined && fromEnv !== "") {
    return loadFound(resolve(cwd, fromEnv), "PROSODY_CONFIG", loadOpts, cwd, "PROSODY_CONFIG");
  }
  const local = join(cwd, "prosody.cfg.lua");
  if (existsSync(local)) return loadFound(local, "cwd", loadOpts, cwd);
  const system = systemConfigPath(env);
  if (system !== undefined && existsSync(system)) return loadFound(system, "system", loadOpts, cwd);
  return withDefaults(embeddedDefaultConfig(cwd), env, cwd);
}

/**
 * COMPAT: Prosody tries a relative --config value as given, then in its config directory
 * (`prosodyctl --config prosody.cfg.lua` works from anywhere); ours is the system config's.
 */
function explicitFile(value: string, cwd: string, env: NodeJS.ProcessEnv): string {
  const given = resolve(cwd, value);
  const system = systemConfigPath(env);
  if (isAbsolute(value) || existsSync(given) || system === undefined) return given;
  const inConfigDir = resolve(dirname(system), value);
  return existsSync(inConfigDir) ? inConfigDir : given;
}

function withDefaults(config: Config, env: NodeJS.ProcessEnv, cwd: string): Config {
  config.pathDefaults = pathDefaultsFor(null, env, cwd);
  return config;
}
