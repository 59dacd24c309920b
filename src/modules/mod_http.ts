/**
 * mod_http: the process-wide HTTP service (Prosody's modules/mod_http.lua behaviour, spec §3).
 *
 * A global module with `addHost`: one HttpServer per process, listening on `http_ports` ×
 * `http_interfaces` (server processes only). Every host it is attached to registers its HTTP
 * host key (`http_host` or the host name) and serves the `http-provider` items of that host;
 * the global context serves items of global modules without a host part. Also provides the
 * `module.httpUrl()` backend through the shared table "/*\/http/url".
 *
 * Limits (global options): `http_max_content_size` (bytes, default 10 MiB, caps every route),
 * `http_header_timeout` (s, default 10), `http_request_timeout` (s, head and body, default 30),
 * `http_keepalive_timeout` (s, default 15), `http_max_connections_per_ip` (default 64, 0 = none;
 * peers in `trusted_proxies` are not capped). Prosody has none of the last four (only its
 * 14-minute `network_settings.read_timeout`); the names are ours. An app declares its routes'
 * body limits with `max_content_size` and headers for all its answers with `headers`.
 */
import type { ItemEvent, Module, OptionValue } from "../core/types.js";
import { HttpServer } from "../http/server.js";
import type { HttpApp, HttpCorsConfig, HttpEvent, HttpHandler, HttpLogLevel, ListenResult } from "../http/types.js";

interface SharedServer {
  server?: HttpServer;
  listening?: ListenResult[];
}

interface SharedUrl {
  url?: (app: string, defaultPath: string | undefined, host: string) => string;
}

const DEFAULT_PORTS = [5280];
const DEFAULT_INTERFACES = ["127.0.0.1", "::1"];
const DISABLED_URL = "http://disabled.invalid/";
const ROUTES_DOC = "https://prosody.im/doc/developers/http#routes";

export default async function modHttp(module: Module): Promise<void> {
  module.setGlobal();
  const isServer = module.server.processType === "server";

  const state = module.shared<SharedServer>("/*/http/server");
  const server = new HttpServer({
    log: (level: HttpLogLevel, msg: string) => module.log(level, "%s", msg),
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
  });
  state.server = server;
  state.listening = [];

  if (isServer) {
    // Listen now (a busy port shows at once), answer once every host's modules are loaded: a request
    // in between would meet missing routes (404) that are about to exist.
    if (module.server.startingUp) {
      server.holdRequests(new Promise<void>((started) => module.hookGlobal("server-started", () => void started())));
    }
    const ports = portList(module);
    const interfaces = strings(
      module.getOptionArray("http_interfaces") ?? module.getOptionArray("local_interfaces") ?? DEFAULT_INTERFACES,
    );
    if (ports.length > 0 && interfaces.length > 0) {
      try {
        state.listening = await server.listen(ports, interfaces);
        for (const l of state.listening) module.log("debug", "HTTP listening on %s port %s", l.address, l.port);
      } catch (err) {
        module.log("error", "Failed to open any HTTP port: %s", err instanceof Error ? err.message : err);
      }
    }
  }

  // --- module.httpUrl() backend (spec §3.8) ---

  const httpUrl = (app: string, defaultPath: string | undefined, host: string): string => {
    const ctx = host === "*" ? module : module.context(host);
    const base = basePath(ctx, app, defaultPath);
    const external = ctx.getOptionString("http_external_url");
    if (external) return externalUrl(external, base);
    const first = state.listening?.[0];
    if (!first) return DISABLED_URL;
    let name = host === "*" ? module.getOptionString("http_default_host") : ctx.getOptionString("http_host");
    if (!name) name = host === "*" ? first.address : host;
    if (name.includes(":") && !name.startsWith("[")) name = `[${name}]`;
    const port = first.port === 80 ? "" : `:${first.port}`;
    return `http://${name}${port}${base}`;
  };
  const urlRegistry = module.shared<SharedUrl>("/*/http/url");
  urlRegistry.url = httpUrl;

  // --- serving apps ---

  const detachers = new Set<() => void>();

  /** Serves the http-provider items of one context: a host wrapper, or the global module. */
  const attach = (ctx: Module): (() => void) => {
    const isGlobal = ctx.host === "*";
    const httpHost = isGlobal ? null : (ctx.getOptionString("http_host") ?? ctx.host);
    const removeHost = httpHost === null ? () => undefined : server.addHost(httpHost);
    const apps = new Map<unknown, Array<() => void>>();

    const added = (event: ItemEvent<HttpApp>) => {
      // In prosodyctl every host shares one bus: only take items of this context's host.
      if (event.source && event.source.host !== ctx.host) return;
      if (apps.has(event.item)) return;
      apps.set(event.item, registerApp(ctx, httpHost, event.item));
    };
    const removed = (event: ItemEvent<HttpApp>) => {
      const removers = apps.get(event.item);
      if (!removers) return;
      apps.delete(event.item);
      for (const remove of removers) remove();
    };
    ctx.handleItems<HttpApp>("http-provider", added, removed);

    const detach = () => {
      for (const removers of apps.values()) for (const remove of removers) remove();
      apps.clear();
      removeHost();
      detachers.delete(detach);
    };
    detachers.add(detach);
    return detach;
  };

  /** Registers one app's routes; returns the removers. */
  const registerApp = (ctx: Module, httpHost: string | null, app: HttpApp): Array<() => void> => {
    const removers: Array<() => void> = [];
    if (!app || typeof app !== "object") return removers;
    const name = app.name;
    if (typeof name !== "string" || name === "") {
      ctx.log("error", "HTTP app has no 'name', add one or use module:provides('http', app)");
      return removers;
    }
    if (!app.route || typeof app.route !== "object") {
      ctx.log("error", "HTTP app %q provides no 'route', add one to handle HTTP requests", name);
      return removers;
    }
    const base = basePath(ctx, name, app.default_path ?? app.defaultPath);

    interface Parsed {
      method: string;
      path: string;
      handler: HttpHandler;
      maxContentSize?: number;
    }
    const limits = bodyLimits(app.max_content_size ?? app.maxContentSize);
    if (typeof limits === "string") {
      ctx.log("error", "HTTP app %q not served: %s", name, limits);
      return removers;
    }
    const extraHeaders = responseHeaders(app.headers);
    if (typeof extraHeaders === "string") {
      ctx.log("error", "HTTP app %q not served: %s", name, extraHeaders);
      return removers;
    }
    const routes: Parsed[] = [];
    for (const [key, value] of Object.entries(app.route)) {
      const m = /^\s*(\S+)(?:\s+(.+?))?\s*$/s.exec(key);
      if (!m || m[1]!.startsWith("/")) {
        ctx.log("error", "Invalid route in %s, %q. See %s", name, key, ROUTES_DOC);
        continue;
      }
      const sub = m[2] ?? "";
      const method = m[1]!.toUpperCase();
      const path = sub === "" ? base : base === "/" && sub.startsWith("/") ? sub : base + sub;
      const handler: HttpHandler = typeof value === "function" ? (value as HttpHandler) : () => value as never;
      routes.push({ method, path, handler, maxContentSize: limits(method, sub) });
    }

    const cors = corsFor(name, app.cors, routes.map((r) => r.method));
    const seen = new Set<string>();
    const add = (method: string, path: string, handler: HttpHandler, priority: number, maxContentSize?: number) => {
      const h = extraHeaders ? withHeaders(handler, extraHeaders) : handler;
      removers.push(server.addRoute({ host: httpHost, method, path, handler: h, priority, maxContentSize }));
    };
    const redirects = new Set<string>();
    const optionPaths = new Set<string>();

    for (const { method, path, handler, maxContentSize } of routes) {
      const event = `${method} ${httpHost ?? ""}${path}`;
      if (seen.has(event)) {
        ctx.log("warn", "App %s added handler twice for '%s', ignoring", name, event);
        continue;
      }
      seen.add(event);
      // The CORS step runs before the route on the same requests: it must not widen the limit.
      if (cors) add(method, path, cors.handler, 1, maxContentSize ?? 0);
      add(method, path, handler, 0, maxContentSize);
      if (cors && method !== "OPTIONS") optionPaths.add(path);

      let bare: string | undefined;
      if (path.endsWith("/*")) bare = path.slice(0, -2);
      else if (path.endsWith("/") && path.length > 1) bare = path.slice(0, -1);
      if (bare !== undefined && bare !== "" && !redirects.has(`${method} ${bare}`)) {
        redirects.add(`${method} ${bare}`);
        add(method, bare, redirectToSlash, -1, 0);
      }
    }
    if (cors) {
      for (const path of optionPaths) {
        if (!seen.has(`OPTIONS ${httpHost ?? ""}${path}`)) add("OPTIONS", path, cors.handler, 1, 0);
        add("OPTIONS", path, preflight, -1, 0);
      }
    }

    ctx.log("info", "Serving '%s' at %s", name, httpUrl(name, app.default_path ?? app.defaultPath, ctx.host));
    return removers;
  };

  /** CORS settings for an app (spec §3.6), or undefined when disabled. */
  const corsFor = (
    name: string,
    appCors: HttpCorsConfig | undefined,
    methods: string[],
  ): { handler: HttpHandler } | undefined => {
    const overrides = asRecord(module.getOption("http_cors_override"))?.[name];
    const conf: HttpCorsConfig = { ...(appCors ?? {}), ...((asRecord(overrides) as HttpCorsConfig | undefined) ?? {}) };
    const enabled = conf.enabled ?? module.getOptionBoolean("http_default_cors_enabled", true);
    if (enabled === false) return undefined;

    const defaults = strings(module.getOptionArray("access_control_allow_methods", ["GET", "OPTIONS"]));
    const extra = [...new Set(methods.filter((m) => !defaults.includes(m)))];
    const allowMethods = [...extra, ...defaults].join(", ");

    const headers = strings(module.getOptionArray("access_control_allow_headers", ["Content-Type"]));
    if (Array.isArray(conf.headers)) {
      for (const h of conf.headers) if (!headers.includes(h)) headers.push(h);
    } else if (conf.headers && typeof conf.headers === "object") {
      for (const [h, on] of Object.entries(conf.headers)) {
        const i = headers.indexOf(h);
        if (on && i < 0) headers.push(h);
        else if (!on && i >= 0) headers.splice(i, 1);
      }
    }
    const allowHeaders = headers.join(", ");
    const maxAge = String(module.getOptionNumber("access_control_max_age", 7200) ?? 7200);
    const credentials = conf.credentials ?? module.getOptionBoolean("access_control_allow_credentials", false);
    const origins = Array.isArray(conf.origins) ? new Set(conf.origins.map(String)) : undefined;

    const handler: HttpHandler = (event: HttpEvent) => {
      const h = event.response.headers;
      h.access_control_allow_methods = allowMethods;
      h.access_control_allow_headers = allowHeaders;
      h.access_control_max_age = maxAge;
      if (credentials) h.access_control_allow_credentials = "true";
      const origin = event.request.headers.origin;
      if (!origins) h.access_control_allow_origin = origin ?? "*";
      else if (origin !== undefined && origins.has(origin)) h.access_control_allow_origin = origin;
      return undefined;
    };
    return { handler };
  };

  // Global apps (provided by global modules) are served without a host part.
  attach(module);

  module.addHost = (hostModule: Module) => {
    const detach = attach(hostModule);
    hostModule.unload = () => detach();
    return undefined;
  };

  let closing: Promise<void> | undefined;
  const shutdown = () => (closing ??= server.close());

  module.hookGlobal("server-stopping", () => {
    void shutdown();
    return undefined;
  });

  module.onUnload(async () => {
    for (const detach of [...detachers]) detach();
    if (urlRegistry.url === httpUrl) delete urlRegistry.url;
    await shutdown();
    if (state.server === server) {
      delete state.server;
      state.listening = [];
    }
  });
}

// --- Internal helpers ---

/**
 * An app's `max_content_size` as a lookup (method, sub-path) → bytes (undefined: the server's
 * default for the method), or a message saying what is wrong with it.
 */
function bodyLimits(value: unknown): ((method: string, sub: string) => number | undefined) | string {
  const valid = (n: unknown): n is number => typeof n === "number" && n >= 0 && !Number.isNaN(n);
  if (value === undefined || value === null) return () => undefined;
  if (typeof value === "number") {
    if (!valid(value)) return `max_content_size must be a number of bytes >= 0, got ${value}`;
    // One number is for the routes that take a body; GET and friends still take none.
    return (method) => (BODYLESS.has(method) ? undefined : value);
  }
  const rec = asRecord(value);
  if (!rec) return `max_content_size must be a number or a table of route = bytes, got ${typeof value}`;
  const byKey = new Map<string, number>();
  for (const [key, n] of Object.entries(rec)) {
    const m = /^\s*(\S+)(?:\s+(.+?))?\s*$/s.exec(key);
    if (!m || !valid(n)) return `max_content_size[${JSON.stringify(key)}] must be a number of bytes >= 0`;
    byKey.set(`${m[1]!.toUpperCase()} ${m[2] ?? ""}`, n);
  }
  return (method, sub) => byKey.get(`${method} ${sub}`);
}

const BODYLESS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

/** An app's `headers` as [name, value] pairs, or a message saying what is wrong with them. */
function responseHeaders(value: unknown): Record<string, string> | undefined | string {
  if (value === undefined || value === null) return undefined;
  const rec = asRecord(value);
  if (!rec) return `headers must be a table of name = value, got ${typeof value}`;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec)) {
    if (typeof v !== "string" && typeof v !== "number") return `headers[${JSON.stringify(k)}] must be a string`;
    out[k] = String(v);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** The handler, after the app's headers are put on the response (the handler may override them). */
function withHeaders(handler: HttpHandler, headers: Record<string, string>): HttpHandler {
  return (event, rest) => {
    Object.assign(event.response.headers, headers);
    return handler(event, rest);
  };
}

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

function redirectToSlash(event: HttpEvent) {
  const { url } = event.request;
  const query = url.query ? `?${url.query}` : "";
  return { statusCode: 301, headers: { location: `${url.path}/${query}` } };
}

function preflight() {
  return "";
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function strings(list: OptionValue[] | undefined): string[] {
  return (list ?? []).filter((v) => typeof v === "string" || typeof v === "number").map(String);
}

function portList(module: Module): number[] {
  const raw = module.getOptionArray("http_ports", DEFAULT_PORTS) ?? DEFAULT_PORTS;
  const ports: number[] = [];
  for (const v of raw) {
    const n = typeof v === "number" ? v : typeof v === "string" ? Number(v.trim()) : NaN;
    if (Number.isInteger(n) && n >= 0 && n <= 65535) ports.push(n);
    else module.log("error", "Invalid port in http_ports: %s", v);
  }
  return ports;
}

function statusMessages(value: OptionValue | undefined): Record<number, string> | undefined {
  const rec = asRecord(value);
  if (!rec) return undefined;
  const out: Record<number, string> = {};
  for (const [k, v] of Object.entries(rec)) if (typeof v === "string" && /^\d+$/.test(k)) out[Number(k)] = v;
  return out;
}

/**
 * Base path of an app (spec §3.2): http_paths[app] from the host, then the global section,
 * then default_path, then "/app"; "$host" substituted; leading "/", no trailing "/".
 */
function basePath(ctx: Module, app: string, defaultPath: string | undefined): string {
  const own = asRecord(ctx.getOption("http_paths"))?.[app];
  const global = ctx.host === "*" ? undefined : asRecord(ctx.context("*").getOption("http_paths"))?.[app];
  const chosen = typeof own === "string" ? own : typeof global === "string" ? global : (defaultPath ?? `/${app}`);
  const substituted = chosen.replace(/\$host/g, ctx.host);
  return `/${substituted.replace(/^\/+/, "").replace(/\/+$/, "")}`;
}

/** http_external_url + base: scheme/host/port from the URL (default port dropped), its path + base. */
function externalUrl(external: string, base: string): string {
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
