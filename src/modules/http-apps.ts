/**
 * How mod_http turns an app given to `provides("http", app)` into routes of the HttpServer:
 * route keys under the app's base path, body limits and extra headers, CORS (spec §3.6), and the
 * redirects Prosody adds for a path's bare form ("/app" → "/app/").
 */
import type { Module } from "../core/types.js";
import type { HttpServer } from "../http/server.js";
import type { HttpApp, HttpCorsConfig, HttpEvent, HttpHandler } from "../http/types.js";
import { asRecord, basePath, strings } from "./http-config.js";

/** Registers one app's routes for a context (host wrapper, or the global module); returns the removers. */
export type RegisterApp = (ctx: Module, httpHost: string | null, app: HttpApp) => Array<() => void>;

const ROUTES_DOC = "https://prosody.im/doc/developers/http#routes";
const BODYLESS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

interface ParsedRoute {
  method: string;
  path: string;
  handler: HttpHandler;
  maxContentSize?: number;
}

/**
 * The registrar of mod_http's global `module` (whose options CORS reads) for `server`; `httpUrl`
 * gives the URL logged for each app served.
 */
export function appRegistrar(
  module: Module,
  server: HttpServer,
  httpUrl: (app: string, defaultPath: string | undefined, host: string) => string,
): RegisterApp {
  return (ctx, httpHost, app) => {
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
    const routes: ParsedRoute[] = [];
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

    const cors = corsFor(module, name, app.cors, routes.map((r) => r.method));
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
      if (cors) add(method, path, cors, 1, maxContentSize ?? 0);
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
        if (!seen.has(`OPTIONS ${httpHost ?? ""}${path}`)) add("OPTIONS", path, cors, 1, 0);
        add("OPTIONS", path, preflight, -1, 0);
      }
    }

    ctx.log("info", "Serving '%s' at %s", name, httpUrl(name, app.default_path ?? app.defaultPath, ctx.host));
    return removers;
  };
}

// --- internal ---

/** The CORS step of an app (spec §3.6), or undefined when disabled; options from the global module. */
function corsFor(module: Module, name: string, appCors: HttpCorsConfig | undefined, methods: string[]): HttpHandler | undefined {
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

  return (event: HttpEvent) => {
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
}

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

function redirectToSlash(event: HttpEvent) {
  const { url } = event.request;
  const query = url.query ? `?${url.query}` : "";
  return { statusCode: 301, headers: { location: `${url.path}/${query}` } };
}

function preflight() {
  return "";
}
