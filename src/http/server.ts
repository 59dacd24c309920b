/**
 * Prosody-compatible HTTP server core (net/http/server.lua + mod_http_errors behaviour) on
 * node:http. Independent of the module runtime: mod_http drives it through addHost/addRoute.
 *
 * Dispatch (spec §3.3): "METHOD /path" (global apps) → for HEAD "GET /path" → Host check →
 * "METHOD host/path" → for HEAD "GET host/path" → 404 page. There is never a 405.
 *
 * Deliberate differences from Prosody 0.12 (all on error paths):
 * - A handler that throws or rejects gets a complete 500 response (Date, Content-Type,
 *   Content-Length, `Connection: close`) and the connection is closed afterwards. Prosody
 *   writes a bare "HTTP/1.0 500 Internal Server Error" with no headers at all, which clients
 *   cannot frame reliably; status code, page and close-after are the same.
 * - A request head over the limit (~10 KiB) is answered "431 Request Header Fields Too Large"
 *   and closed; Prosody leaves such a connection hanging without a response.
 * - A malformed request line is answered 400 and closed, a protocol version other than
 *   HTTP/1.x 505 and closed; Prosody closes silently.
 * - A body over the limit of the routes that could answer the request (a route's own
 *   maxContentSize, none for GET/HEAD/OPTIONS/TRACE routes, never above the server's cap) is
 *   answered 413 from the head, before any of it is read, without running any handler; where no
 *   route matches, the normal answer (404…) is sent instead. Either way the connection is closed
 *   (gently: see ConnectionGuard.lingerOnClose). Prosody reads up to its cap, then closes (or,
 *   for a body only declared on a GET, runs the route without it).
 * - A head not complete within headerTimeoutMs, or a request (head and body) not complete within
 *   requestTimeoutMs, is answered 408 and closed; an idle keep-alive connection is closed after
 *   keepAliveTimeoutMs; a client address over maxConnectionsPerIp open connections has the new
 *   one closed at once. Prosody has only its 14-minute read timeout.
 * - Garbage after a valid request on one connection is answered 400 after that request's own
 *   answer. CONNECT is answered 404 and closed. An unknown Expect value is ignored.
 */
import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { reasonPhrase } from "./codes.js";
import { errorMessage, HTML_CONTENT_TYPE, renderErrorPage, renderRunningPage } from "./error-page.js";
import { ConnectionGuard } from "./connections.js";
import { clientInfo, headerMap, hostKey, normaliseIp, parseTarget } from "./request.js";
import { ResponseState } from "./response.js";
import { RouteTable, routeKey } from "./routes.js";
import { rawErrorAnswer, toWire, validStatus, VersionedResponse, type WireContext, type WireResponse } from "./wire.js";
import type {
  ErrorPageConfig,
  HttpEvent,
  HttpLog,
  HttpRequest,
  HttpResult,
  HttpServerOptions,
  InjectOptions,
  InjectResult,
  ListenResult,
  RouteSpec,
} from "./types.js";

export type * from "./types.js";

const DEFAULT_MAX_CONTENT_SIZE = 10 * 1024 * 1024;
const DEFAULT_MAX_HEADER_SIZE = 10 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
/** Retry-After of a 503 for a storage failure (a lock wait or a full descriptor table passes soon). */
const STORAGE_RETRY_AFTER_S = 5;

/** A StorageError or StorageUnavailableError, by its `name` (plugins may hold another copy of the class). */
function isStorageFailure(err: unknown): boolean {
  const name = err instanceof Error ? err.name : undefined;
  return name === "StorageError" || name === "StorageUnavailableError";
}
// Timeouts in seconds, not minutes: a legitimate client sends its head in one packet and a form
// body right after it; anything slower mostly holds a socket for nothing (slowloris).
const DEFAULT_KEEPALIVE_TIMEOUT_MS = 15_000;
const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * 64 concurrent connections per address: a browser opens at most 6 per host, so this leaves
 * room for about ten browsers behind one NAT (office, carrier-grade NAT) while one attacker
 * address cannot hold more than 64 sockets, each for at most the head/request timeout.
 */
const DEFAULT_MAX_CONNECTIONS_PER_IP = 64;
/** How often node checks the head/request timeouts (its default, 30 s, adds up to 30 s to each). */
const TIMEOUT_CHECK_INTERVAL_MS = 1000;
/** Methods whose routes accept no request body unless they declare a limit. */
const BODYLESS_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

/** What the pipeline needs from a request, wherever it came from (socket or inject()). */
interface RequestInput {
  method: string;
  target: string;
  httpVersion: string;
  rawHeaders: readonly string[];
  body: Buffer;
  peer: string;
}

type Sink = (wire: WireResponse) => void;

interface Exchange {
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
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

function connectionTokens(headers: Record<string, string>): string[] {
  return (headers.connection ?? "").toLowerCase().split(",").map((t) => t.trim());
}

/** A duration option in ms: a positive number, else the default (misuse throws). */
function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0)) throw new TypeError(`${name} must be a number of milliseconds > 0, got ${String(value)}`);
  return value;
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

export class HttpServer {
  private readonly routes = new RouteTable();
  private readonly hosts = new Map<string, number>();
  private readonly servers: http.Server[] = [];
  private readonly log: HttpLog;
  private readonly maxContentSize: number;
  private readonly maxHeaderSize: number;
  private readonly errors: ErrorPageConfig;
  private readonly trusted: Set<string>;
  private readonly defaultHost: string | undefined;
  private readonly closeTimeoutMs: number;
  private readonly keepAliveTimeoutMs: number;
  private readonly headerTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly guard: ConnectionGuard;
  private inflight = 0;
  private drainWaiters: Array<() => void> = [];
  private closing = false;
  private closePromise: Promise<void> | undefined;

  constructor(opts: HttpServerOptions) {
    this.log = opts.log;
    this.maxContentSize = opts.maxContentSize ?? DEFAULT_MAX_CONTENT_SIZE;
    this.maxHeaderSize = opts.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    this.errors = opts.errorMessages ?? {};
    this.trusted = new Set((opts.trustedProxies ?? ["127.0.0.1", "::1"]).map(normaliseIp));
    this.defaultHost = opts.defaultHost;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.keepAliveTimeoutMs = positive("keepAliveTimeoutMs", opts.keepAliveTimeoutMs, DEFAULT_KEEPALIVE_TIMEOUT_MS);
    this.requestTimeoutMs = positive("requestTimeoutMs", opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
    // node refuses a head timeout longer than the request timeout; the head is part of the request.
    this.headerTimeoutMs = Math.min(positive("headerTimeoutMs", opts.headerTimeoutMs, DEFAULT_HEADER_TIMEOUT_MS), this.requestTimeoutMs);
    const maxPerIp = opts.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP;
    if (typeof maxPerIp !== "number" || Number.isNaN(maxPerIp) || maxPerIp < 0) {
      throw new TypeError(`maxConnectionsPerIp must be a number >= 0 (0 = no cap), got ${String(maxPerIp)}`);
    }
    this.guard = new ConnectionGuard({
      maxPerIp,
      exempt: this.trusted,
      errorWaitMs: this.requestTimeoutMs,
      onRefused: (ip, open) => this.log("debug", `Refusing a connection from ${ip}: ${open} already open (http_max_connections_per_ip)`),
    });
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

  /** Open connections from `ip` that count against the per-address cap. */
  openConnections(ip: string): number {
    return this.guard.openConnections(ip);
  }

  // --- listening ---

  /**
   * Binds every interface × port. Failures are logged and skipped ("::1" without IPv6 is only
   * a warning); rejects only if nothing could be bound. Port 0 reports the real port.
   */
  async listen(ports: number[], interfaces: string[]): Promise<ListenResult[]> {
    if (this.closing) throw new Error("HTTP server is closed");
    const bound: ListenResult[] = [];
    const failures: unknown[] = [];
    for (const port of ports) {
      for (const iface of interfaces) {
        const host = iface === "*" ? "0.0.0.0" : iface;
        try {
          bound.push(await this.listenOne(port, host));
        } catch (err) {
          failures.push(err);
          const code = (err as NodeJS.ErrnoException).code;
          const noIpv6 = host.includes(":") && (code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT");
          this.log(
            noIpv6 ? "warn" : "error",
            `Failed to open HTTP port ${port} on ${host}: ${(err as Error).message ?? err}` +
              (noIpv6 ? " (IPv6 unavailable?)" : ""),
          );
        }
      }
    }
    if (bound.length === 0 && failures.length > 0) throw failures[0];
    return bound;
  }

  private listenOne(port: number, host: string): Promise<ListenResult> {
    const server = http.createServer({
      maxHeaderSize: this.maxHeaderSize,
      requireHostHeader: false,
      ServerResponse: VersionedResponse as unknown as typeof http.ServerResponse,
      headersTimeout: this.headerTimeoutMs,
      requestTimeout: this.requestTimeoutMs,
      keepAliveTimeout: this.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, this.headerTimeoutMs),
    });
    server.keepAliveTimeout = this.keepAliveTimeoutMs; // also as a property: older node ignores the option
    // A client may half-close after sending its request (`shutdown(SHUT_WR)`, HTTP/1.0 tools):
    // it still gets its answer, then the connection closes. node's default drops the answer.
    (server as unknown as { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    server.on("connection", (socket) => this.guard.accept(socket));
    server.on("request", (req, res) => this.onRequest(req, res));
    server.on("checkContinue", (req, res) => this.onRequest(req, res, true));
    // Any other Expect value: served as if absent, as Prosody does (node would answer a bare 417).
    server.on("checkExpectation", (req, res) => this.onRequest(req, res));
    // CONNECT: no route ever takes it (Prosody answers 404); without a listener node drops the
    // connection with no answer at all.
    server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
      socket.on("error", () => undefined);
      socket.resume(); // node stopped reading it: discard the rest rather than reset on close
      this.answerRaw(socket, 404);
    });
    server.on("clientError", (err, socket) => this.onClientError(err, socket));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        server.close();
        reject(err);
      };
      server.once("error", onError);
      server.listen(port, host, () => {
        server.off("error", onError);
        server.on("error", (err) => this.log("error", `HTTP server error on ${host}:${port}: ${err.message}`));
        this.servers.push(server);
        const addr = server.address();
        if (addr && typeof addr === "object") resolve({ address: addr.address, port: addr.port });
        else resolve({ address: host, port });
      });
    });
  }

  /** Addresses currently listened on. */
  addresses(): ListenResult[] {
    const out: ListenResult[] = [];
    for (const s of this.servers) {
      const a = s.address();
      if (a && typeof a === "object") out.push({ address: a.address, port: a.port });
    }
    return out;
  }

  /**
   * Graceful shutdown: stop accepting, close idle keep-alive connections, let in-flight
   * requests finish (their responses say `Connection: close`) for up to closeTimeoutMs,
   * then cut whatever is left.
   */
  close(): Promise<void> {
    if (this.closePromise) return this.closePromise;
    this.closing = true;
    this.closePromise = (async () => {
      const servers = this.servers.splice(0);
      const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      for (const s of servers) s.closeIdleConnections();
      await this.drained(this.closeTimeoutMs);
      for (const s of servers) s.closeAllConnections();
      await Promise.all(closed);
    })();
    return this.closePromise;
  }

  private drained(timeoutMs: number): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      timer.unref?.();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.drainWaiters.push(done);
    });
  }

  private requestDone(): void {
    this.inflight--;
    if (this.inflight === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters.splice(0);
      for (const w of waiters) w();
    }
  }

  // --- in-process dispatch (tests) ---

  /** Runs a request through the full pipeline without a socket. */
  inject(opts: InjectOptions): Promise<InjectResult> {
    const rawHeaders: string[] = [];
    const given = opts.headers ?? {};
    for (const [k, v] of Array.isArray(given) ? given : Object.entries(given)) rawHeaders.push(k, v);
    const body = opts.body === undefined ? Buffer.alloc(0) : Buffer.from(opts.body);
    const input: RequestInput = {
      method: (opts.method ?? "GET").toUpperCase(),
      target: opts.url,
      httpVersion: opts.httpVersion ?? "1.1",
      rawHeaders,
      body,
      peer: normaliseIp(opts.ip ?? "127.0.0.1"),
    };
    return new Promise((resolve) => {
      const sink: Sink = (wire) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of wire.headers) headers[k] = v;
        const bytes = wire.body === undefined ? Buffer.alloc(0) : Buffer.from(wire.body);
        resolve({
          statusCode: wire.statusCode,
          status: wire.reason,
          headers,
          body: bytes,
          text: () => bytes.toString("utf8"),
          close: wire.close,
        });
      };
      let x: Exchange;
      try {
        x = this.exchange(input, sink);
      } catch (err) {
        this.log("error", `Failed to prepare HTTP request: ${describeError(err)}`);
        return;
      }
      const limit = this.bodyLimit(x);
      if (body.length > limit.bytes) return this.refuseBody(x, limit.routed);
      this.run(x);
    });
  }

  // --- node adapter ---

  /** Requests arriving before `until` settles wait for it (the server's startup). */
  holdRequests(until: Promise<unknown>): void {
    const gate = until.then(
      () => undefined,
      () => undefined,
    );
    this.gate = gate;
    void gate.then(() => {
      if (this.gate === gate) this.gate = undefined;
    });
  }

  private gate: Promise<void> | undefined;

  private onRequest(req: IncomingMessage, res: ServerResponse, expectsContinue = false): void {
    if (this.gate) {
      void this.gate.then(() => this.onRequest(req, res, expectsContinue));
      return;
    }
    // A request behind a refused body, on a connection that is being closed: not answered.
    if (this.guard.isLingering(req.socket)) return void req.resume();
    this.inflight++;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      this.requestDone();
    };
    res.on("close", finish);
    res.on("error", (err) => this.log("debug", `HTTP response error: ${err.message}`));
    req.on("error", (err) => this.log("debug", `HTTP request error: ${err.message}`));
    // Until this response is written, a protocol error later on the connection waits for it.
    const paid = this.guard.owe(req.socket, req);
    res.once("finish", paid);
    res.once("close", paid);

    const sink = this.nodeSink(res);
    const input: RequestInput = {
      method: req.method ?? "GET",
      target: req.url ?? "/",
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      peer: normaliseIp(req.socket.remoteAddress),
    };

    if (req.httpVersionMajor !== 1) {
      const x = this.exchange({ ...input, httpVersion: "1.1" }, sink);
      x.forceClose = true;
      this.sendError(x, 505);
      return;
    }
    let x: Exchange;
    try {
      x = this.exchange(input, sink);
    } catch (err) {
      this.log("error", `Failed to prepare HTTP request: ${describeError(err)}`);
      res.destroy();
      return;
    }
    // The limit is known from the head (the routes that could answer), so an oversized body is
    // refused before any of it is read or buffered.
    const limit = this.bodyLimit(x);
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit.bytes) {
      this.guard.lingerOnClose(req.socket);
      return this.refuseBody(x, limit.routed);
    }
    // No body framed (no Content-Length, no Transfer-Encoding): nothing to wait for; node
    // discards the (empty) request stream when the response ends.
    const framed = declared > 0 || req.headers["transfer-encoding"] !== undefined;
    // 100 Continue only for a body still to come, and only while this response owns the socket:
    // node writes it straight into a pipelined response's queued output, where it ends up
    // counted as part of an earlier answer's body (seen in the fuzz: 25 bytes too many).
    if (expectsContinue && framed && res.socket) res.writeContinue();
    if (!framed) return this.run(x);

    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > limit.bytes) {
        tooLarge = true;
        chunks.length = 0;
        this.guard.lingerOnClose(req.socket);
        this.refuseBody(x, limit.routed);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (tooLarge) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      x.request.rawBody = body;
      x.request.body = body.length === 0 ? "" : body.toString("utf8");
      this.run(x);
    });
  }

  /**
   * A body over the limit: 413 if some route could answer the request (its limit is what was
   * exceeded), else the normal answer without the body (404, 400…). Either way no handler
   * sees it and the connection is closed after the answer, without reading the rest.
   */
  private refuseBody(x: Exchange, routed: boolean): void {
    x.forceClose = true;
    if (routed) return this.sendError(x, 413);
    this.run(x);
  }

  /**
   * The largest body accepted by any handler that could answer this request (the server's cap
   * at most), and whether there is one at all.
   */
  private bodyLimit(x: Exchange): { bytes: number; routed: boolean } {
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

  private nodeSink(res: ServerResponse): Sink {
    return (wire) => {
      if (res.headersSent || res.destroyed || res.writableEnded) return;
      try {
        // Without our own Connection header node would add "Connection: close"/"keep-alive"
        // plus "Keep-Alive: timeout=…"; Prosody sends none for a plain HTTP/1.0 exchange.
        if (!wire.headers.some(([name]) => name === "Connection")) res.removeHeader("Connection");
        // One writeHead with the final list (node still validates every name and value) instead
        // of a setHeader per header.
        res.writeHead(wire.statusCode, wire.reason, wire.headers);
        if (wire.body === undefined) res.end();
        else res.end(wire.body);
      } catch (err) {
        this.log("error", `Failed to write HTTP response: ${describeError(err)}`);
        res.destroy();
      }
    };
  }

  private onClientError(err: Error & { code?: string }, socket: Duplex): void {
    if (this.guard.hasAnswered(socket)) return;
    const busy = (socket as unknown as { _httpMessage?: { headersSent?: boolean; finished?: boolean } })._httpMessage;
    // A response half written cannot be followed by another one: cut the connection.
    if (err.code === "ECONNRESET" || !socket.writable || (busy?.headersSent && !busy.finished)) {
      socket.destroy();
      return;
    }
    let code = 400;
    if (err.code === "HPE_HEADER_OVERFLOW") code = 431;
    else if (err.code === "ERR_HTTP_REQUEST_TIMEOUT" || err.code === "HPE_HEADERS_TIMEOUT") code = 408;
    this.log("debug", `Rejecting malformed HTTP request (${err.code ?? err.message}) with ${code}`);
    this.answerRaw(socket, code);
  }

  /** An error page written straight to the socket (no request object), then the connection closed. */
  private answerRaw(socket: Duplex, code: number): void {
    // Written after the answers still owed to complete requests on this connection (pipelining).
    this.guard.answerError(socket, rawErrorAnswer(code, this.errors));
  }

  // --- pipeline ---

  private exchange(input: RequestInput, sink: Sink): Exchange {
    const headers = headerMap(input.rawHeaders);
    const target = parseTarget(input.target);
    const peer = input.peer;
    const { ip, secure } = clientInfo(peer, headers, this.trusted);
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
    });
    x.event = { request, response: x.response };
    return x;
  }

  private run(x: Exchange): void {
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
      let result: unknown;
      try {
        result = m.handler(x.event, m.rest);
        if (isThenable(result)) result = await result;
      } catch (err) {
        this.log("error", `Error in HTTP handler for '${m.key}': ${describeError(err)}`);
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
  private sendError(x: Exchange, code: number, extra?: string): void {
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
      close: x.forceClose || this.closing || !x.persistent,
      connectionToken: x.connectionToken,
      errors: this.errors,
      log: this.log,
    };
  }
}
