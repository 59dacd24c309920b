/**
 * Where a system install keeps things, and the defaults a config in the system config directory
 * gets: those of Debian's Prosody build (its prosodyctl sets CFG_CONFIGDIR, CFG_DATADIR and
 * CFG_PLUGINDIR to these), so a host started on /etc/prosody/prosody.cfg.lua reads and writes the
 * data the real server uses. Every one can be moved by an environment variable, which is how the
 * tests point them at temporary directories; the options of the config (data_path, …) still win.
 */
import { dirname, resolve } from "node:path";

/** Debian's Prosody: the config the search falls back to before the embedded default. */
export const SYSTEM_CONFIG = "/etc/prosody/prosody.cfg.lua";
/** Debian's CFG_DATADIR. */
export const SYSTEM_DATA_DIR = "/var/lib/prosody";
/** Debian's CFG_PLUGINDIR: Prosody's own Lua modules, which this host cannot load. */
export const SYSTEM_PROSODY_PLUGIN_DIR = "/usr/lib/prosody/modules";

/** The environment variables that move the defaults (documented in the README). */
export const ENV = {
  /** The system config path; set to "" to leave the system config out of the search. */
  systemConfig: "PROSODY_TS_SYSTEM_CONFIG",
  /** The default data directory (when the config sets no data_path). */
  dataDir: "PROSODY_TS_DATA_DIR",
  /** Prosody's own plugin directory, shown by `about`. */
  prosodyPluginDir: "PROSODY_TS_PROSODY_PLUGIN_DIR",
} as const;

/** A path and where it came from, in words `prosodyctl about` prints. */
export interface PathOrigin {
  path: string;
  origin: string;
}

/** The defaults decided when the config was found (they depend on the environment then). */
export interface PathDefaults {
  /** True when the config file lies in the system config directory. */
  system: boolean;
  /** The data directory when the config sets no `data_path`; unset: `./data`. */
  data?: PathOrigin;
  /** Prosody's own plugin directory, when there is a system install to speak of. */
  prosodyPlugins?: PathOrigin;
}

/** The system config file to try, or undefined when the environment turned the step off. */
export function systemConfigPath(env: NodeJS.ProcessEnv): string | undefined {
  const v = env[ENV.systemConfig];
  if (v === undefined) return SYSTEM_CONFIG;
  return v === "" ? undefined : resolve(v);
}

/**
 * The defaults for a config read from `file` (null: the embedded default). A file in the system
 * config directory gets Debian's, however it was named (search or --config), since that is the
 * install it belongs to.
 */
export function pathDefaultsFor(file: string | null, env: NodeJS.ProcessEnv, cwd: string): PathDefaults {
  const sys = systemConfigPath(env) ?? SYSTEM_CONFIG;
  const system = file !== null && dirname(resolve(file)) === dirname(sys);
  const where = `the default for a config in ${dirname(sys)}`;
  const dataEnv = env[ENV.dataDir];
  const pluginEnv = env[ENV.prosodyPluginDir];
  return {
    system,
    data: dataEnv
      ? { path: resolve(cwd, dataEnv), origin: `$${ENV.dataDir}` }
      : system
        ? { path: SYSTEM_DATA_DIR, origin: where }
        : undefined,
    prosodyPlugins: pluginEnv
      ? { path: resolve(cwd, pluginEnv), origin: `$${ENV.prosodyPluginDir}` }
      : system
        ? { path: SYSTEM_PROSODY_PLUGIN_DIR, origin: where }
        : undefined,
  };
}
