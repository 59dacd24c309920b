/**
 * mod_http's reading of its options (global section): the HttpServer's limits and error pages,
 * the ports and interfaces to listen on, and each app's base path and external URL (spec §3.2,
 * §3.8). Bad values are logged and replaced by the default, as Prosody's get_option_number does.
 */
import type { Module, OptionValue } from "../core/types.js";
import type { HttpLogLevel, HttpServerOptions } from "../http/types.js";

const DEFAULT_PORTS = [5280];
const DEFAULT_INTERFACES = ["127.0.0.1", "::1"];

/** The HttpServer's options from the module's config. */
export function serverOptions(module: Module): HttpServerOptions {
  return {
    log: (level: HttpLogLevel, msg: string) => module.log(level, "%s", msg),
    // Every answer goes to the statistics bus (a no-op unless a metrics module listens).
    onAnswer: (a) => {
      const stats = module.server.stats;
      if (stats.active) stats.observe("http_request", a.seconds, { method: a.method, route: a.route ?? "none", status: String(a.status) });
    },
    maxContentSize: module.getOptionNumber("http_max_content_size", 10 * 1024 * 1024),
    headerTimeoutMs: seconds(module, "http_header_timeout", 10),
    requestTimeoutMs: seconds(module, "http_request_timeout", 30),
    keepAliveTimeoutMs: seconds(module, "http_keepalive_timeout", 15),
    maxConnectionsPerIp: count(module, "http_max_connections_per_ip", 64),
    trustedProxies: strings(module.getOptionArray("trusted_proxies", ["127.0.0.1", "::1"])),
    defaultHost: module.getOptionString("http_default_host"),
    errorMessages: {
      messages: statusMessages(module.getOption("http_errors_messages")),
      defaultMessage: module.getOptionString("http_errors_default_message"),
      detailed: module.getOptionBoolean("http_errors_detailed", false),
    },
  };
}

/** `http_interfaces`, else `local_interfaces`, else the loopback addresses. */
export function interfaceList(module: Module): string[] {
  return strings(module.getOptionArray("http_interfaces") ?? module.getOptionArray("local_interfaces") ?? DEFAULT_INTERFACES);
}

/** `http_ports` (or another service's ports option); invalid entries are logged and skipped. */
export function portList(module: Module, option = "http_ports", defaults: number[] = DEFAULT_PORTS): number[] {
  const raw = module.getOptionArray(option, defaults) ?? defaults;
  const ports: number[] = [];
  for (const v of raw) {
    const n = typeof v === "number" ? v : typeof v === "string" ? Number(v.trim()) : NaN;
    if (Number.isInteger(n) && n >= 0 && n <= 65535) ports.push(n);
    else module.log("error", "Invalid port in %s: %s", option, v);
  }
  return ports;
}

/**
 * Base path of an app (spec §3.2): http_paths[app] from the host, then the global section,
 * then default_path, then "/app"; "$host" substituted; leading "/", no trailing "/".
 */
export function basePath(ctx: Module, app: string, defaultPath: string | undefined): string {
  const own = asRecord(ctx.getOption("http_paths"))?.[app];
  const global = ctx.host === "*" ? undefined : asRecord(ctx.context("*").getOption("http_paths"))?.[app];
  const chosen = typeof own === "string" ? own : typeof global === "string" ? global : (defaultPath ?? `/${app}`);
  const substituted = chosen.replace(/\$host/g, ctx.host);
  return `/${substituted.replace(/^\/+/, "").replace(/\/+$/, "")}`;
}

/** http_external_url + base: scheme/host/port from the URL (default port dropped), its path + base. */
export function externalUrl(external: string, base: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(external.trim());
  if (!m) return external.replace(/\/*$/, "/") + base.replace(/^\//, "");
  const scheme = m[1]!.toLowerCase();
  let authority = m[2]!;
  const port = /:(\d+)$/.exec(authority);
  if (port && ((scheme === "http" && port[1] === "80") || (scheme === "https" && port[1] === "443"))) {
    authority = authority.slice(0, port.index);
  }
  let path = m[3] || "/";
  if (!path.endsWith("/")) path += "/";
  return `${scheme}://${authority}${path}${base.replace(/^\//, "")}`;
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

export function strings(list: OptionValue[] | undefined): string[] {
  return (list ?? []).filter((v) => typeof v === "string" || typeof v === "number").map(String);
}

// --- internal ---

/** A duration option given in seconds, as ms; a value that is not > 0 is logged and replaced. */
function seconds(module: Module, name: string, fallback: number): number {
  const v = module.getOptionNumber(name, fallback) ?? fallback;
  if (v > 0 && Number.isFinite(v)) return v * 1000;
  module.log("error", "Option %s must be a number of seconds > 0, using %s", name, fallback);
  return fallback * 1000;
}

/** A count option (0 = unlimited); a negative value is logged and replaced. */
function count(module: Module, name: string, fallback: number): number {
  const v = module.getOptionNumber(name, fallback) ?? fallback;
  if (v >= 0) return v;
  module.log("error", "Option %s must be a number >= 0 (0 = no limit), using %s", name, fallback);
  return fallback;
}

function statusMessages(value: OptionValue | undefined): Record<number, string> | undefined {
  const rec = asRecord(value);
  if (!rec) return undefined;
  const out: Record<number, string> = {};
  for (const [k, v] of Object.entries(rec)) if (typeof v === "string" && /^\d+$/.test(k)) out[Number(k)] = v;
  return out;
}
