/**
 * A Runtime with the host's built-in modules (mod_http, mod_storage_*): what the entry points
 * (server, prosodyctl) and embedders use. Core itself never imports src/modules.
 */
import { Runtime, type RuntimeOptions } from "./core/runtime.js";
import { BUILTIN_MODULES } from "./modules/index.js";

export function createRuntime(opts: Omit<RuntimeOptions, "builtins">): Runtime {
  return new Runtime({ ...opts, builtins: BUILTIN_MODULES });
}
