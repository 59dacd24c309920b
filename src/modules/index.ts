/**
 * Modules compiled into the host (Prosody's own modules/ directory): loaded by name before the
 * bundled plugins folder is searched, after any `plugin_paths` directory. The entry points hand
 * this table to the Runtime (core never imports src/modules).
 */
import type { BuiltinModules } from "../core/plugin-loader.js";

export const BUILTIN_MODULES: BuiltinModules = {
  http: { import: () => import("./mod_http.js"), serves: ["http-provider"] },
  storage_internal: { import: () => import("./mod_storage_internal.js") },
  storage_memory: { import: () => import("./mod_storage_memory.js") },
  storage_sql: { import: () => import("./mod_storage_sql.js") },
};
