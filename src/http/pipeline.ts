/**
 * The request pipeline of the HTTP server, independent of sockets: an exchange (request, response
 * state, event) is built from a request, dispatched to the routes, and the handler's result turned
 * into the response (spec §3.4), with error pages for what no handler answers. server.ts feeds it
 * from node:http and from inject().
 *
 * Dispatch (spec §3.3): "METHOD /path" (global apps) → for HEAD "GET /path" → Host check →
 * "METHOD host/path" → for HEAD "GET host/path" → 404 page. There is never a 405.
 */
import { reasonPhrase } from "./codes.js";
import { errorMessage, HTML_CONTENT_TYPE, renderErrorPage, renderRunningPage } from "./error-page.js";
import { clientInfo, headerMap, hostKey, parseTarget } from "./request.js";
import { ResponseState } from "./response.js";
import { RouteTable, routeKey } from "./routes.js";
import { toWire, validStatus, type WireContext, type WireResponse } from "./wire.js";
import type { ErrorPageConfig, HttpAnswerInfo, HttpEvent, HttpLog, HttpRequest, HttpResult, RouteSpec } from "./types.js";

/** Retry-After of a 503 for a storage failure (a lock wait or a full descriptor table passes soon). */
const STORAGE_RETRY_AFTER_S = 5;

/** A StorageError or StorageUnavailableError, by its `name` (plugins may hold another copy of the class). */
function isStorageFailure(err: unknown): boolean {
  const name = err instanceof Error ? err.name : undefined;
  return name === "StorageError" || name === "StorageUnavailableError";
}

/**
 * A write refused because the request's own text cannot be stored (U+0000 on PostgreSQL): the
 * client's input is at fault, retrying cannot help, and nothing was written, so 400.
 */
function isUnstorableInput(err: unknown): boolean {
  return err instanceof Error && err.name === "UnstorableTextError";
}

/** Methods whose routes accept no request body unless they declare a limit. */
const BODYLESS_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

/** What the pipeline needs from a request, wherever it came from (socket or inject()). */
export interface RequestInput {
  method: string;
  target: string;
  httpVersion: string;
  rawHeaders: readonly string[];
  body: Buffer;
  peer: string;
  /** Arrived over TLS (an https port). */
  secure?: boolean;
}

export type Sink = (wire: WireResponse) => void;

export interface Exchange {
  request: HttpRequest;
  response: ResponseState;
  event: HttpEvent;
  /** Path failed normalisation ("..") → 400 "Invalid path". */
  invalidPath: boolean;
  isHead: boolean;
  /** Whether the client asked for a persistent connection. */
  persistent: boolean;
  /** Whether the client said anything about the connection (HTTP/1.0 + keep-alive). */
  connectionToken: boolean;
  forceClose: boolean;
  /** The key of the route whose handler ran last (metrics label), if any. */
  route?: string;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

function connectionTokens(headers: Record<string, string>): string[] {
  return (headers.connection ?? "").toLowerCase().split(",").map((t) => t.trim());
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

export interface PipelineOptions {
  log: HttpLog;
  errors: ErrorPageConfig;
  /** Proxies whose forwarding headers are believed (normalised addresses). */
  trusted: Set<string>;
  defaultHost: string | undefined;
  /** The server's cap on any request body. */
  maxContentSize: number;
  /** Whether the server is closing (every answer then closes its connection). */
  isClosing: () => boolean;
  /** Told of every answer (metrics). */
  onAnswer?: (answer: HttpAnswerInfo) => void;
}

export class Pipeline {
  private readonly routes = new RouteTable();
  private readonly hosts = new Map<string, number>();
  private readonly log: HttpLog;
  private readonly errors: ErrorPageConfig;
  private readonly trusted: Set<string>;
  private readonly defaultHost: string | undefined;
  private readonly maxContentSize: number;
  private readonly isClosing: () => boolean;
  private readonly onAnswer: ((answer: HttpAnswerInfo) => void) | undefined;

  constructor(opts: PipelineOptions) {
    this.onAnswer = opts.onAnswer;
    this.log = opts.log;
    this.errors = opts.errors;
    this.trusted = opts.trusted;
    this.defaultHost = opts.defaultHost;
    this.maxContentSize = opts.maxContentSize;
    this.isClosing = opts.isClosing;
  }

  // --- registration ---

  /** Registers an HTTP host key (exact, case-sensitive). Reference-counted; returns the remover. */
  addHost(httpHost: string): () => void {
    this.hosts.set(httpHost, (this.hosts.get(httpHost) ?? 0) + 1);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const n = (this.hosts.get(httpHost) ?? 1) - 1;
      if (n > 0) this.hosts.set(httpHost, n);
      else this.hosts.delete(httpHost);
    };
  }

  hasHost(httpHost: string): boolean {
    return this.hosts.has(httpHost);
  }

  /** Registers a handler; returns the remover. */
  addRoute(route: RouteSpec): () => void {
    const path = route.path.startsWith("/") ? route.path : `/${route.path}`;
    const limit = route.maxContentSize;
    if (limit !== undefined && (typeof limit !== "number" || Number.isNaN(limit) || limit < 0)) {
      throw new TypeError(`maxContentSize of route ${route.method} ${path} must be a number of bytes >= 0, got ${String(limit)}`);
    }
    const maxBody = limit ?? (BODYLESS_METHODS.has(route.method.toUpperCase()) ? 0 : Infinity);
    return this.routes.add(routeKey(route.method, route.host, path), route.handler, route.priority ?? 0, maxBody);
  }

  // --- one request ---

  exchange(input: RequestInput, sink: Sink): Exchange {
    const headers = headerMap(input.rawHeaders);
    const target = parseTarget(input.target);
    const peer = input.peer;
    const info = clientInfo(peer, headers, this.trusted);
    const { ip } = info;
    const secure = input.secure === true || info.secure;
    const request: HttpRequest = {
      method: input.method,
      path: target.path ?? target.url.path,
      url: target.url,
      httpVersion: input.httpVersion,
      headers,
      body: input.body.length === 0 ? "" : input.body.toString("utf8"),
      rawBody: input.body,
      ip,
      secure,
    };
    const started = this.onAnswer ? performance.now() : 0;
    const tokens = connectionTokens(headers);
    const http11 = input.httpVersion !== "1.0";
    const x: Exchange = {
      request,
      response: undefined as unknown as ResponseState,
      event: undefined as unknown as HttpEvent,
      invalidPath: target.path === undefined,
      isHead: input.method === "HEAD",
      persistent: http11 ? !tokens.includes("close") : tokens.includes("keep-alive"),
      connectionToken: http11 || tokens.includes("keep-alive"),
      forceClose: false,
    };
    x.response = new ResponseState((res) => {
      let wire: WireResponse;
      try {
        wire = toWire(res, this.wireContext(x));
      } catch (err) {
        // e.g. a body or header value whose toString() throws: never let it escape into
        // the handler (a deferred send would otherwise crash the process).
        this.log("error", `Failed to build HTTP response for ${request.method} ${request.path}: ${describeError(err)}`);
        x.forceClose = true;
        res.statusCode = 500;
        res.status = undefined;
        res.headers = { content_type: HTML_CONTENT_TYPE };
        res.body = renderErrorPage(500, reasonPhrase(500), errorMessage(500, this.errors));
        wire = toWire(res, this.wireContext(x));
      }
      sink(wire);
      if (this.onAnswer) {
        try {
          this.onAnswer({ method: request.method, route: x.route, status: res.statusCode, seconds: (performance.now() - started) / 1000 });
        } catch {
          // metrics must never break an answer
        }
      }
    });
    x.event = { request, response: x.response };
    return x;
  }

  /**
   * A body over the limit: 413 if some route could answer the request (its limit is what was
   * exceeded), else the normal answer without the body (404, 400…). Either way no handler
   * sees it and the connection is closed after the answer, without reading the rest.
   */
  refuseBody(x: Exchange, routed: boolean): void {
    x.forceClose = true;
    if (routed) return this.sendError(x, 413);
    this.run(x);
  }

  /**
   * The largest body accepted by any handler that could answer this request (the server's cap
   * at most), and whether there is one at all.
   */
  bodyLimit(x: Exchange): { bytes: number; routed: boolean } {
    if (x.invalidPath) return { bytes: 0, routed: false };
    const { method, path } = x.request;
    const keys = [routeKey(method, null, path)];
    if (x.isHead) keys.push(routeKey("GET", null, path));
    let host = hostKey(x.request.headers.host, x.request.url);
    if (host !== undefined && !this.hosts.has(host)) {
      host = this.defaultHost !== undefined && this.hosts.has(this.defaultHost) ? this.defaultHost : undefined;
    }
    if (host !== undefined) {
      keys.push(routeKey(method, host, path));
      if (x.isHead) keys.push(routeKey("GET", host, path));
    }
    let bytes = 0;
    let routed = false;
    for (const key of keys) {
      for (const m of this.routes.match(key)) {
        routed = true;
        if (m.maxBody > bytes) bytes = m.maxBody;
      }
    }
    return { bytes: Math.min(bytes, this.maxContentSize), routed };
  }

  run(x: Exchange): void {
    this.dispatch(x).catch((err) => {
      this.log("error", `Unhandled error while dispatching ${x.request.method} ${x.request.url.path}: ${describeError(err)}`);
      if (!x.response.sent) this.fail(x, err);
    });
  }

  private async dispatch(x: Exchange): Promise<void> {
    const { request } = x;
    if (x.invalidPath) return this.sendError(x, 400, "Invalid path");
    const { method, path } = request;

    if (await this.fire(x, routeKey(method, null, path))) return;
    if (x.isHead && (await this.fire(x, routeKey("GET", null, path)))) return;

    let host = hostKey(request.headers.host, request.url);
    if (host === undefined) return this.sendError(x, 400, "Missing or invalid 'Host' header");
    if (!this.hosts.has(host)) {
      if (this.defaultHost !== undefined && this.hosts.has(this.defaultHost)) host = this.defaultHost;
      else return this.sendError(x, 404, `Unknown host: ${host}`);
    }

    if (await this.fire(x, routeKey(method, host, path))) return;
    if (x.isHead && (await this.fire(x, routeKey("GET", host, path)))) return;
    this.sendError(x, 404);
  }

  /** Runs the handlers for one key; true once the request has been answered (or deferred). */
  private async fire(x: Exchange, key: string): Promise<boolean> {
    const matches = this.routes.match(key);
    for (const m of matches) {
      if (x.response.sent) return true;
      x.route = m.key;
      let result: unknown;
      try {
        result = m.handler(x.event, m.rest);
        if (isThenable(result)) result = await result;
      } catch (err) {
        // A storage failure passes (a database restarting, a lock held elsewhere) and is answered
        // 503: one warning line each, not an error with a stack per request for the whole outage.
        if (isUnstorableInput(err)) {
          this.log("warn", `Refused input in HTTP handler for '${m.key}' (400): ${(err as Error).message}`);
          this.sendError(x, 400);
          return true;
        }
        if (isStorageFailure(err)) this.log("warn", `Storage unavailable in HTTP handler for '${m.key}' (503): ${(err as Error).message}`);
        else this.log("error", `Error in HTTP handler for '${m.key}': ${describeError(err)}`);
        this.fail(x, err);
        return true;
      }
      if (result === undefined || result === null) continue;
      this.apply(x, result as HttpResult, m.key);
      return true;
    }
    return x.response.sent;
  }

  /** Maps a handler's return value onto the response (spec §3.4). */
  private apply(x: Exchange, result: HttpResult, key: string): void {
    const res = x.response;
    if (res.sent || result === true) return;
    if (typeof result === "number") {
      if (!validStatus(result)) {
        this.log("error", `HTTP handler for '${key}' returned an invalid status ${result}`);
        return this.fail(x);
      }
      res.statusCode = result;
      if (result >= 400) return this.sendError(x, result);
      return res.send();
    }
    if (typeof result === "string" || Buffer.isBuffer(result)) return res.send(result);
    if (result instanceof Error) {
      this.log("error", `HTTP handler for '${key}' returned an error: ${describeError(result)}`);
      return this.fail(x, result);
    }
    if (typeof result === "object" && result !== null) {
      const r = result as Record<string, unknown>;
      const looksLikeResponse = "statusCode" in r || "status_code" in r || "body" in r || "headers" in r;
      if (!looksLikeResponse && ("code" in r || "text" in r || "condition" in r || "type" in r)) {
        const code = validStatus(r.code) ? r.code : 500;
        return this.sendError(x, code, typeof r.text === "string" ? r.text : undefined);
      }
      const status = r.statusCode ?? r.status_code;
      if (status !== undefined) {
        if (!validStatus(status)) {
          this.log("error", `HTTP handler for '${key}' returned an invalid status ${String(status)}`);
          return this.fail(x);
        }
        res.statusCode = status;
      }
      if (typeof r.status === "string") res.status = r.status;
      if (typeof r.headers === "object" && r.headers !== null) Object.assign(res.headers, r.headers);
      if (r.body !== undefined && r.body !== null) {
        res.body = typeof r.body === "string" || Buffer.isBuffer(r.body) ? r.body : String(r.body);
      }
      return res.send();
    }
    this.log("error", `HTTP handler for '${key}' returned an unsupported value (${typeof result})`);
    this.fail(x);
  }

  /**
   * 500 after a handler failure; the connection is closed after the response. A storage failure
   * (StorageError or StorageUnavailableError, recognised by name: plugins may hold another copy
   * of the class) is 503 with Retry-After instead: the request changed nothing and may be tried again.
   */
  private fail(x: Exchange, err?: unknown): void {
    if (x.response.sent) return;
    x.forceClose = true;
    const extra = this.errors.detailed && err !== undefined ? (err instanceof Error ? err.message : String(err)) : undefined;
    if (isStorageFailure(err)) {
      x.response.headers.retry_after = String(STORAGE_RETRY_AFTER_S);
      return this.sendError(x, 503, extra);
    }
    this.sendError(x, 500, extra);
  }

  /** An error page for `code` (a 404 for "/" becomes the 200 "Prosody is running!" page). */
  sendError(x: Exchange, code: number, extra?: string): void {
    const res = x.response;
    if (res.sent) return;
    res.headers.content_type = HTML_CONTENT_TYPE;
    if (code === 404 && x.request.path === "/" && !x.invalidPath) {
      res.statusCode = 200;
      res.status = undefined;
      return res.send(renderRunningPage());
    }
    res.statusCode = code;
    res.send(renderErrorPage(code, reasonPhrase(code), errorMessage(code, this.errors), extra));
  }

  private wireContext(x: Exchange): WireContext {
    return {
      method: x.request.method,
      path: x.request.path,
      isHead: x.isHead,
      close: x.forceClose || this.isClosing() || !x.persistent,
      connectionToken: x.connectionToken,
      errors: this.errors,
      log: this.log,
    };
  }
}
