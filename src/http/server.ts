/**
 * Prosody-compatible HTTP server core (net/http/server.lua + mod_http_errors behaviour) on
 * node:http. Independent of the module runtime: mod_http drives it through addHost/addRoute.
 * This file is the node side (listening, connections, reading bodies, shutdown); routing and
 * answering are pipeline.ts.
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
import https from "node:https";
import type { SecureContextOptions, TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { bindFailureReason, StartupError } from "../core/startup-error.js";
import { ConnectionGuard } from "./connections.js";
import { describeError, Pipeline, type Exchange, type RequestInput, type Sink } from "./pipeline.js";
import { normaliseIp } from "./request.js";
import { rawErrorAnswer, VersionedResponse } from "./wire.js";
import type {
  ErrorPageConfig,
  HttpLog,
  HttpServerOptions,
  InjectOptions,
  InjectResult,
  ListenOptionNames,
  ListenResult,
  RouteSpec,
  SecureListen,
} from "./types.js";

export type * from "./types.js";

const DEFAULT_MAX_CONTENT_SIZE = 10 * 1024 * 1024;
const DEFAULT_MAX_HEADER_SIZE = 10 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 5000;
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

/** A duration option in ms: a positive number, else the default (misuse throws). */
function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !(value > 0)) throw new TypeError(`${name} must be a number of milliseconds > 0, got ${String(value)}`);
  return value;
}

export class HttpServer {
  private readonly pipeline: Pipeline;
  private readonly servers: http.Server[] = [];
  private readonly secureServers = new Set<https.Server>();
  private readonly log: HttpLog;
  private readonly maxHeaderSize: number;
  private readonly errors: ErrorPageConfig;
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
    this.maxHeaderSize = opts.maxHeaderSize ?? DEFAULT_MAX_HEADER_SIZE;
    this.errors = opts.errorMessages ?? {};
    const trusted = new Set((opts.trustedProxies ?? ["127.0.0.1", "::1"]).map(normaliseIp));
    this.pipeline = new Pipeline({
      log: this.log,
      errors: this.errors,
      trusted,
      defaultHost: opts.defaultHost,
      maxContentSize: opts.maxContentSize ?? DEFAULT_MAX_CONTENT_SIZE,
      isClosing: () => this.closing,
      onAnswer: opts.onAnswer,
    });
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
      exempt: trusted,
      errorWaitMs: this.requestTimeoutMs,
      onRefused: (ip, open) => this.log("debug", `Refusing a connection from ${ip}: ${open} already open (http_max_connections_per_ip)`),
    });
  }

  // --- registration ---

  /** Registers an HTTP host key (exact, case-sensitive). Reference-counted; returns the remover. */
  addHost(httpHost: string): () => void {
    return this.pipeline.addHost(httpHost);
  }

  hasHost(httpHost: string): boolean {
    return this.pipeline.hasHost(httpHost);
  }

  /** Registers a handler; returns the remover. */
  addRoute(route: RouteSpec): () => void {
    return this.pipeline.addRoute(route);
  }

  /** Open connections from `ip` that count against the per-address cap. */
  openConnections(ip: string): number {
    return this.guard.openConnections(ip);
  }

  // --- listening ---

  /**
   * Binds every interface × port. A failure stops the start: the servers this call opened are
   * closed and a StartupError names the address and the options (`names`; HTTPS listeners say
   * https_ports). Only an IPv6 address on a machine without IPv6 is a warning (the default
   * interfaces include "::1"), as long as something else was bound. Port 0 reports the real port.
   * With `secure`, the ports speak TLS (https) and feed the same pipeline, limits and shutdown.
   */
  async listen(
    ports: number[],
    interfaces: string[],
    secure?: SecureListen,
    names: ListenOptionNames = secure ? { ports: "https_ports", interfaces: "https_interfaces" } : { ports: "http_ports", interfaces: "http_interfaces" },
  ): Promise<ListenResult[]> {
    if (this.closing) throw new Error("HTTP server is closed");
    const opened = this.servers.length;
    const bound: ListenResult[] = [];
    let firstFailure: StartupError | undefined;
    for (const port of ports) {
      for (const iface of interfaces) {
        const host = iface === "*" ? "0.0.0.0" : iface;
        try {
          bound.push(await this.listenOne(port, host, secure));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          const failure = new StartupError(`Cannot listen on ${host} port ${port} (${names.ports}, ${names.interfaces}): ${bindFailureReason(err)}`);
          if (host.includes(":") && (code === "EADDRNOTAVAIL" || code === "EAFNOSUPPORT")) {
            this.log("warn", `${failure.message} (IPv6 unavailable?)`);
            firstFailure ??= failure;
            continue;
          }
          for (const s of this.servers.splice(opened)) s.close();
          throw failure;
        }
      }
    }
    if (bound.length === 0 && firstFailure) throw firstFailure;
    return bound;
  }

  private listenOne(port: number, host: string, secure?: SecureListen): Promise<ListenResult> {
    const options: http.ServerOptions = {
      maxHeaderSize: this.maxHeaderSize,
      requireHostHeader: false,
      ServerResponse: VersionedResponse as unknown as typeof http.ServerResponse,
      headersTimeout: this.headerTimeoutMs,
      requestTimeout: this.requestTimeoutMs,
      keepAliveTimeout: this.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, this.headerTimeoutMs),
    };
    const server = secure ? this.secureServer(options, secure) : http.createServer(options);
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
      // "::" alone, as Prosody binds it: "*" (0.0.0.0) may be bound beside it on the same port.
      server.listen({ port, host, ipv6Only: host === "::" }, () => {
        server.off("error", onError);
        server.on("error", (err) => this.log("error", `HTTP server error on ${host}:${port}: ${err.message}`));
        this.servers.push(server);
        if (secure) this.secureServers.add(server as https.Server);
        const addr = server.address();
        const result = addr && typeof addr === "object" ? { address: addr.address, port: addr.port } : { address: host, port };
        resolve(secure ? { ...result, secure: true } : result);
      });
    });
  }

  /** An https server: TLS first (SNI picks the context), then exactly what http does. */
  private secureServer(options: http.ServerOptions, secure: SecureListen): https.Server {
    const server = https.createServer({
      ...options,
      ...secure.options,
      SNICallback: (name, done) => done(null, secure.sni(name.toLowerCase())),
    });
    // A failed handshake (a scanner, a client refusing our certificate) ends that connection only.
    server.on("tlsClientError", (err) => this.log("debug", `TLS handshake failed: ${err.message}`));
    return server;
  }

  /** New default TLS settings for every https port; open connections keep theirs. */
  setSecureOptions(options: SecureContextOptions): void {
    for (const s of this.secureServers) s.setSecureContext(options);
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
      this.secureServers.clear();
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
        x = this.pipeline.exchange(input, sink);
      } catch (err) {
        this.log("error", `Failed to prepare HTTP request: ${describeError(err)}`);
        return;
      }
      const limit = this.pipeline.bodyLimit(x);
      if (body.length > limit.bytes) return this.pipeline.refuseBody(x, limit.routed);
      this.pipeline.run(x);
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
      secure: (req.socket as TLSSocket).encrypted === true,
    };

    if (req.httpVersionMajor !== 1) {
      const x = this.pipeline.exchange({ ...input, httpVersion: "1.1" }, sink);
      x.forceClose = true;
      this.pipeline.sendError(x, 505);
      return;
    }
    let x: Exchange;
    try {
      x = this.pipeline.exchange(input, sink);
    } catch (err) {
      this.log("error", `Failed to prepare HTTP request: ${describeError(err)}`);
      res.destroy();
      return;
    }
    // The limit is known from the head (the routes that could answer), so an oversized body is
    // refused before any of it is read or buffered.
    const limit = this.pipeline.bodyLimit(x);
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit.bytes) {
      this.guard.lingerOnClose(req.socket);
      return this.pipeline.refuseBody(x, limit.routed);
    }
    // No body framed (no Content-Length, no Transfer-Encoding): nothing to wait for; node
    // discards the (empty) request stream when the response ends.
    const framed = declared > 0 || req.headers["transfer-encoding"] !== undefined;
    // 100 Continue only for a body still to come, and only while this response owns the socket:
    // node writes it straight into a pipelined response's queued output, where it ends up
    // counted as part of an earlier answer's body (seen in the fuzz: 25 bytes too many).
    if (expectsContinue && framed && res.socket) res.writeContinue();
    if (!framed) return this.pipeline.run(x);

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
        this.pipeline.refuseBody(x, limit.routed);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (tooLarge) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      x.request.rawBody = body;
      x.request.body = body.length === 0 ? "" : body.toString("utf8");
      this.pipeline.run(x);
    });
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
}
