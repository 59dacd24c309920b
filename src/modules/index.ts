/**
 * Modules compiled into the host (Prosody's own modules/ directory): loaded by name before the
 * bundled plugins folder is searched, after any `plugin_paths` directory.
 */
import type { PluginFile } from "../core/types.js";

export const BUILTIN_MODULES: Record<string, () => Promise<PluginFile>> = {
  http: () => import("./mod_http.js"),
  storage_internal: () => import("./mod_storage_internal.js"),
  storage_memory: () => import("./mod_storage_memory.js"),
  storage_sql: () => import("./mod_storage_sql.js"),
};
