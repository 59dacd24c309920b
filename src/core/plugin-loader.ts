/**
 * Finding plugin files by name, like util/pluginloader.lua: each directory in turn
 * (plugin_paths, then the host's built-in modules, then the bundled plugins folder), and in
 * each directory a fixed list of file names. The first that exists wins.
 */
import { existsSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { RUNNING_FROM_SOURCE } from "./paths.js";
import { letPluginsImportHost } from "./plugin-imports.js";
import type { PluginFile } from "./types.js";

/**
 * Modules compiled into the host (mod_http, mod_storage_*), by name. Core does not import them:
 * the entry points (src/server.ts, src/cli/) hand them to the Runtime.
 */
export type BuiltinModules = Readonly<Record<string, BuiltinModule>>;

export interface BuiltinModule {
  import(): Promise<PluginFile>;
  /**
   * Item kinds only this module acts on (mod_http: `http-provider`). Such an item provided on a
   * host where this module is not loaded does nothing, so the server reports it.
   */
  serves?: readonly string[];
}

export { RUNNING_FROM_SOURCE } from "./paths.js";

const EXTENSIONS = RUNNING_FROM_SOURCE ? [".js", ".mjs", ".ts"] : [".js", ".mjs"];

export interface FoundPlugin {
  name: string;
  /** File path, or "builtin:<name>" for modules compiled into the host. */
  path: string;
  /**
   * What the plugin consists of on disk: its own folder in the search directory (`mod_x/`), or
   * its file when it lies directly there. Undefined for built-in modules.
   */
  files?: string;
  import(): Promise<PluginFile>;
}

export function candidateFiles(dir: string, name: string): string[] {
  const stems = [
    `mod_${name}/${name}/mod_${name}`,
    `mod_${name}/mod_${name}`,
    `mod_${name}/index`,
    `${name}/mod_${name}`,
    `mod_${name}`,
  ];
  const out: string[] = [];
  for (const stem of stems) for (const ext of EXTENSIONS) out.push(join(dir, stem + ext));
  return out;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export class PluginNotFoundError extends Error {
  override name = "PluginNotFoundError";
  constructor(
    readonly pluginName: string,
    readonly searched: string[],
  ) {
    super(`mod_${pluginName} not found (searched ${searched.length ? searched.join(", ") : "no directories"} and the built-in modules)`);
  }
}

/**
 * @param pluginPaths directories from the `plugin_paths` option, in order (absolute)
 * @param bundledDir the plugins shipped with this host
 * @param builtins the modules compiled into the host
 */
export function findPlugin(name: string, pluginPaths: string[], bundledDir: string, builtins: BuiltinModules = {}): FoundPlugin {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.includes("..")) {
    throw new PluginNotFoundError(name, []);
  }
  const searched: string[] = [];
  const tryDir = (dir: string, outside: boolean): FoundPlugin | undefined => {
    const abs = resolve(dir);
    if (!existsSync(abs)) return undefined;
    searched.push(abs);
    for (const file of candidateFiles(abs, name)) {
      if (isFile(file)) {
        const top = relative(abs, file).split(sep)[0]!;
        const load = () => {
          // A plugin outside this package finds "prosody-ts" only through the resolve hook.
          if (outside) letPluginsImportHost();
          return import(pathToFileURL(file).href) as Promise<PluginFile>;
        };
        return { name, path: file, files: join(abs, top), import: load };
      }
    }
    return undefined;
  };
  for (const dir of pluginPaths) {
    const found = tryDir(dir, true);
    if (found) return found;
  }
  const builtin = Object.hasOwn(builtins, name) ? builtins[name] : undefined;
  if (builtin) return { name, path: `builtin:${name}`, import: () => builtin.import() };
  const found = tryDir(bundledDir, false);
  if (found) return found;
  throw new PluginNotFoundError(name, searched);
}
