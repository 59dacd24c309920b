/**
 * Whether a real Prosody beside us has a module: its Lua file in Prosody's module directory
 * (Debian's /usr/lib/prosody/modules, moved by PROSODY_TS_PROSODY_PLUGIN_DIR), the local one, or a
 * `plugin_paths` folder. A config written for Prosody enables two dozen XMPP modules we do not
 * implement; those are Prosody's business, while a name neither of us has is most likely a typo.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "./config/index.js";

const DEFAULT_DIRS = ["/usr/lib/prosody/modules", "/usr/local/lib/prosody/modules"];

/** Where Prosody looks for modules: `plugin_paths` first, then its own directories. */
export function prosodyModuleDirs(config: Config, pluginPaths: readonly string[]): string[] {
  const own = config.pathDefaults?.prosodyPlugins?.path;
  return [...new Set([...pluginPaths, ...(own ? [own] : []), ...DEFAULT_DIRS])];
}

export function prosodyHasModule(name: string, dirs: readonly string[]): boolean {
  return dirs.some((dir) => existsSync(join(dir, `mod_${name}.lua`)) || existsSync(join(dir, `mod_${name}`, `mod_${name}.lua`)));
}
