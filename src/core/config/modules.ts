/**
 * Which modules a host loads: Prosody's modulemanager get_modules_for_host (spec §1.3).
 */
import type { Config } from "./types.js";

/** Loaded on every host before the config is consulted ("posix" is Prosody's platform module). */
export const AUTOLOAD_MODULES = ["posix", "presence", "message", "iq", "offline", "c2s", "s2s", "s2s_auth_certs"];
/** The only global modules a Component inherits. */
export const COMPONENT_INHERITABLE_MODULES = new Set([
  "tls", "saslauth", "dialback", "iq", "s2s", "s2s_bidi", "smacks", "server_contact_info",
]);

function names(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

/**
 * Prosody's module set for a host: autoload ∪ global modules_enabled − global modules_disabled
 * (for a Component: only the component-inheritable ones), then ∪ host modules_enabled − host
 * modules_disabled, where host lists count only if the host section set them itself. If both
 * vcard and vcard_legacy remain, vcard is dropped. A Component's module comes first.
 *
 * Prosody's order is unspecified (a hash set); here it is: component module, autoload order,
 * global list order, host list order. `autoloaded` holds the names present only because of
 * the autoload list (no modules_enabled asked for them).
 *
 * @example modulesForHost(config, "example.com").modules.includes("roster")
 */
export function modulesForHost(config: Config, host: string): { modules: string[]; autoloaded: Set<string> } {
  const component = config.get(host, "component_module");
  const globalEnabled = names(config.getRaw("*", "modules_enabled"));
  const globalDisabled = new Set(names(config.getRaw("*", "modules_disabled")));
  const isGlobal = host === "*";
  const hostEnabled = isGlobal ? [] : names(config.getRaw(host, "modules_enabled"));
  const hostDisabled = new Set(isGlobal ? [] : names(config.getRaw(host, "modules_disabled")));

  let global = [...new Set([...AUTOLOAD_MODULES, ...globalEnabled])].filter((m) => !globalDisabled.has(m));
  if (typeof component === "string") global = global.filter((m) => COMPONENT_INHERITABLE_MODULES.has(m));
  const set = new Set([...global, ...hostEnabled].filter((m) => !hostDisabled.has(m)));
  if (set.has("vcard") && set.has("vcard_legacy")) set.delete("vcard");

  const modules = typeof component === "string" ? [component, ...[...set].filter((m) => m !== component)] : [...set];
  const asked = new Set([...globalEnabled, ...hostEnabled]);
  const autoloaded = new Set(modules.filter((m) => AUTOLOAD_MODULES.includes(m) && !asked.has(m)));
  return { modules, autoloaded };
}
