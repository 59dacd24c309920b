/**
 * A Runtime with the host's built-in modules (mod_http, mod_storage_*): what the entry points
 * (server, prosodyctl) and embedders use. Core itself never imports src/modules.
 */
import { Runtime, type RuntimeOptions } from "./core/runtime.js";
import { BUILTIN_MODULES } from "./modules/index.js";

/**
 * A Runtime for `config` with mod_http and the storage modules available.
 * @example
 * const rt = createRuntime({ config: await findAndLoadConfig({}), processType: "prosodyctl" });
 * const invites = await rt.modules.load("example.com", "invites");
 */
export function createRuntime(opts: Omit<RuntimeOptions, "builtins">): Runtime {
  return new Runtime({ ...opts, builtins: BUILTIN_MODULES });
}
