/**
 * `prosodyctl check config`: the config-file checks of Prosody 0.12's `prosodyctl check config`
 * that mean something for this host, with Prosody's wording (captured from its prosodyctl):
 * no global options, no (enabled) hosts, no global modules_enabled, obsolete and deprecated global
 * options, global-only options set under a host, `mod_`/`auth_`/`storage_` names in
 * modules_enabled, `default_storage` beside a string `storage`. Prosody's XMPP-only checks (TLS,
 * public in-band registration, components, vcard/pep conflicts, host-name suggestions) are its own
 * concern: this host serves no XMPP connection.
 */
import type { Config } from "../core/config/index.js";
import type { OptionValue } from "../core/types.js";

/** One finding: its lines (already indented) and whether it counts as a problem. */
export interface Finding {
  lines: string[];
  problem: boolean;
}

/** Options Prosody 0.12 reads only from the global section (its list in `check config`). */
const GLOBAL_ONLY = new Set([
  "access_control_allow_credentials", "access_control_allow_headers", "access_control_allow_methods", "access_control_max_age",
  "admin_socket", "body_size_limit", "bosh_max_inactivity", "bosh_max_polling", "bosh_max_wait", "buffer_size_limit",
  "c2s_close_timeout", "c2s_stanza_size_limit", "c2s_tcp_keepalives", "c2s_timeout", "component_stanza_size_limit",
  "component_tcp_keepalives", "consider_bosh_secure", "consider_websocket_secure", "console_banner",
  "console_prettyprint_settings", "daemonize", "gc", "http_default_host", "http_errors_always_show",
  "http_errors_default_message", "http_errors_detailed", "http_errors_messages", "http_max_buffer_size",
  "http_max_content_size", "installer_plugin_path", "limits", "limits_resolution", "log", "multiplex_buffer_size",
  "network_backend", "network_default_read_size", "network_settings", "openmetrics_allow_cidr", "openmetrics_allow_ips",
  "pidfile", "plugin_paths", "plugin_server", "prosodyctl_timeout", "prosody_group", "prosody_user", "run_as_root",
  "s2s_close_timeout", "s2s_insecure_domains", "s2s_require_encryption", "s2s_secure_auth", "s2s_secure_domains",
  "s2s_stanza_size_limit", "s2s_tcp_keepalives", "s2s_timeout", "statistics", "statistics_config", "statistics_interval",
  "tcp_keepalives", "tls_profile", "trusted_proxies", "umask", "use_dane", "use_ipv4", "use_ipv6",
  "websocket_frame_buffer_limit", "websocket_frame_fragment_limit", "websocket_get_response_body",
  "websocket_get_response_text",
]);

const OBSOLETE = new Set([
  "archive_cleanup_interval", "cross_domain_bosh", "cross_domain_websocket", "dns_timeout", "muc_log_cleanup_interval",
  "s2s_dns_resolvers", "setgid", "setuid",
]);

const DAEMONIZE = "instead, use the --daemonize/-D or --foreground/-F command line flags";
const DEPRECATED: Record<string, string> = {
  anonymous_login: `instead, use 'authentication = "anonymous"'`,
  daemonize: DAEMONIZE,
  disallow_s2s: `instead, add "s2s" to 'modules_enabled'`,
  no_daemonize: DAEMONIZE,
  require_encryption: "instead, use 'c2s_require_encryption' and 's2s_require_encryption'",
  vcard_compatibility: `instead, add "mod_compat_vcard" from prosody-modules`,
  use_libevent: `instead, use 'network_backend = "event"'`,
  whitelist_registration_only: "instead, use 'allowlist_registration_only'",
  registration_whitelist: "instead, use 'registration_allowlist'",
  registration_blacklist: "instead, use 'registration_blocklist'",
  // Prosody's table passes one argument here, which comes out as the bare option name.
  blacklist_on_registration_throttle_overload: "blocklist_on_registration_throttle_overload",
};
for (const [old, replacement] of [["bosh", "http"], ["legacy_ssl", "c2s_direct_tls"]] as const) {
  for (const suffix of ["port", "ports", "interface", "interfaces", "ssl"]) {
    const plural = suffix === "port" || suffix === "interface" ? `${suffix}s` : suffix;
    DEPRECATED[`${old}_${suffix}`] = `instead, use '${replacement}_${plural}'`;
  }
}

/** Options that belong in the global section: the list, and Prosody's name patterns for ports, interfaces and TLS. */
function isGlobalOnly(name: string): boolean {
  if (name === "external_service_port" || name === "turn_external_port") return false;
  return (
    GLOBAL_ONLY.has(name) ||
    /^interfaces?/.test(name) ||
    /_ports?$/.test(name) ||
    /_interfaces?$/.test(name) ||
    (/_ssl$/.test(name) && !/^[cs]2s_ssl$/.test(name))
  );
}

const strings = (v: OptionValue | undefined): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

/** The findings of `check config`, in Prosody's order. */
export function checkConfigFile(config: Config): Finding[] {
  const out: Finding[] = [];
  const problem = (...lines: string[]) => out.push({ lines: ["", ...lines], problem: true });
  const note = (...lines: string[]) => out.push({ lines, problem: false });
  const global = config.sections.get("*")?.options ?? {};
  const globalNames = Object.keys(global);
  const hosts = config.hosts();
  const enabled = hosts.filter((h) => config.isEnabled(h));

  // A host section above every global option swallows them all (Prosody ignores `log` here).
  if (!globalNames.some((n) => n !== "log")) {
    problem(
      "    No global options defined. Perhaps you have put a host definition at the top",
      "    of the config file? They should be at the bottom, see https://prosody.im/doc/configure#overview",
    );
  }
  if (enabled.length === 0) {
    if (hosts.length === 0) problem("    No hosts are defined, please add at least one VirtualHost section");
    else if (global.enabled === false) problem("    No hosts are enabled. Remove enabled = false from the global section or put enabled = true under at least one VirtualHost section");
    else problem("    All hosts are disabled. Remove enabled = false from at least one VirtualHost section");
  }
  if (global.modules_enabled === undefined) {
    const lines = ["    No global modules_enabled is set?"];
    let common: Set<string> | undefined;
    for (const host of enabled) {
      const own = config.getRaw(host, "modules_enabled");
      if (config.getRaw(host, "component_module") !== undefined || own === undefined) continue;
      const mods = new Set(strings(own));
      common = common ? new Set([...common].filter((m) => mods.has(m))) : mods;
    }
    if (common?.size) {
      lines.push("    Consider moving these modules into modules_enabled in the global section:", `    ${[...common].map((m) => JSON.stringify(m)).join(", ")}`);
    }
    note(...lines, "");
  }

  const obsolete = globalNames.filter((n) => OBSOLETE.has(n));
  if (obsolete.length) problem("    You have some obsolete options you can remove from the global section:", `    ${obsolete.join(", ")}`);
  const deprecated = globalNames.filter((n) => Object.hasOwn(DEPRECATED, n));
  if (deprecated.length) problem("    You have some deprecated options in the global section:", ...deprecated.map((n) => `    '${n}' -- ${DEPRECATED[n]}`));

  for (const host of hosts) {
    const misplaced = Object.keys(config.sections.get(host)?.options ?? {}).filter(isGlobalOnly);
    if (!misplaced.length) continue;
    const n = misplaced.length;
    problem(
      `    You have ${n} option${n > 1 ? "s " : " "}set under ${host} that should be`,
      "    in the global section of the config file, above any VirtualHost or Component definitions,",
      "    see https://prosody.im/doc/configure#overview for more information.",
      "",
      `    You need to move the following option${n > 1 ? "s" : ""}: ${misplaced.join(", ")}`,
    );
  }

  const modules = new Set(strings(global.modules_enabled));
  for (const host of enabled) for (const m of strings(config.getRaw(host, "modules_enabled"))) modules.add(m);
  for (const mod of modules) {
    // Prosody lists these without counting them as problems.
    if (mod.startsWith("mod_")) {
      note("", "    Modules in modules_enabled should not have the 'mod_' prefix included.", `    Change '${mod}' to '${mod.slice(4)}'.`);
    } else if (mod.startsWith("auth_")) {
      note(
        "",
        "    Authentication modules should not be added to modules_enabled,",
        "    but be specified in the 'authentication' option.",
        `    Remove '${mod}' from modules_enabled and instead add`,
        `        authentication = '${mod.slice(5)}'`,
        "    For more information see https://prosody.im/doc/authentication",
      );
    } else if (mod.startsWith("storage_")) {
      note(
        "",
        "    storage modules should not be added to modules_enabled,",
        "    but be specified in the 'storage' option.",
        `    Remove '${mod}' from modules_enabled and instead add`,
        `        storage = '${mod.slice(8)}'`,
        "    For more information see https://prosody.im/doc/storage",
      );
    }
  }
  for (const section of config.sections.keys()) {
    if (typeof config.getRaw(section, "storage") === "string" && config.getRaw(section, "default_storage") !== undefined) {
      note("", "    The 'default_storage' option is not needed if 'storage' is set to a string.");
      break;
    }
  }
  return out;
}
