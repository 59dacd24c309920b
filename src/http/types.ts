/**
 * Types shared by the HTTP layer (server, routes, mod_http). The shapes follow Prosody's
 * `event.request` / `event.response` (net/http/server.lua) in TypeScript casing.
 */
import type { SecureContext, SecureContextOptions } from "node:tls";

export type HttpLogLevel = "debug" | "info" | "warn" | "error";
export type HttpLog = (level: HttpLogLevel, msg: string) => void;

export interface HttpUrl {
  /** Raw request path ("//" collapsed, NOT percent-decoded). */
  path: string;
  /** Raw query string without the "?"; undefined when the target had no "?". */
  query?: string;
  /** Only for absolute-form targets (`GET http://host:port/path`). */
  scheme?: string;
  host?: string;
  port?: number;
}

export interface HttpRequest {
  method: string;
  /** Normalised path: "//" collapsed, percent-decoded, always starts with "/". */
  path: string;
  url: HttpUrl;
  /** "1.0" or "1.1". */
  httpVersion: string;
  /** Keys lower-case with '-' → '_' (content_type); duplicates joined with ','. */
  headers: Record<string, string>;
  /** Body decoded as UTF-8 ("" when empty). */
  body: string;
  rawBody: Buffer;
  /** Client address (X-Forwarded-For applied behind a trusted proxy). */
  ip: string;
  /** True over an https port, or behind a trusted proxy that sent `X-Forwarded-Proto: https`. */
  secure: boolean;
}

export interface HttpResponse {
  statusCode: number;
  /** Custom reason phrase; the standard one for statusCode when unset. */
  status?: string;
  /** Any key style: `content_type`, `Content-Type` and `content-type` all emit `Content-Type`. */
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Sends the response (once; later calls are ignored). For handlers that returned `true`. */
  send(body?: string | Buffer): void;
  /** True once the response has been handed to the connection. */
  readonly sent: boolean;
}

export interface HttpEvent {
  request: HttpRequest;
  response: HttpResponse;
}

/** What a module passes to `provides("http", app)`. */
export interface HttpApp {
  name?: string;
  route?: Record<string, unknown>;
  default_path?: string;
  /** Alias of default_path in TypeScript casing. */
  defaultPath?: string;
  cors?: HttpCorsConfig;
  streaming_uploads?: boolean;
  /**
   * Largest request body in bytes: a number for every route of the app, or per route key
   * (`{ POST = 65536, ["PUT /upload"] = 1e7 }`). Routes without one accept none for GET, HEAD,
   * OPTIONS and TRACE, else up to `http_max_content_size`, which also caps every value here.
   */
  max_content_size?: number | Record<string, number>;
  /** Alias of max_content_size in TypeScript casing. */
  maxContentSize?: number | Record<string, number>;
  /**
   * Headers added to every response of the app's routes (a handler's own value for the same
   * header wins), e.g. `Cache-Control: no-store` for pages that carry secrets.
   */
  headers?: Record<string, string>;
}

export interface HttpCorsConfig {
  enabled?: boolean;
  credentials?: boolean;
  /** Extra allowed request headers (`{ Name: true }` adds, `false` removes), or a list to add. */
  headers?: Record<string, boolean> | string[];
  /** Allowed origins; "*" (default) echoes any Origin. */
  origins?: string[] | "*";
}

/** A response description returned by a handler. `status_code` is accepted as an alias. */
export interface HttpResultObject {
  statusCode?: number;
  status_code?: number;
  status?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** util.error-like object: status `code` (default 500), `text` shown as the page's extra line. */
export interface HttpErrorResult {
  code?: number;
  text?: string;
  type?: string;
  condition?: string;
}

export type HttpResult =
  | undefined
  | null
  | void
  | true
  | number
  | string
  | Buffer
  | HttpResultObject
  | HttpErrorResult;

export type HttpHandler = (event: HttpEvent, rest?: string) => HttpResult | Promise<HttpResult>;

export interface RouteSpec {
  /** HTTP host key (exact match against the Host header minus port); null = global app. */
  host: string | null;
  method: string;
  /** Full path; a trailing "/*" matches any deeper path and passes the remainder as `rest`. */
  path: string;
  handler: HttpHandler;
  /** Higher runs first among routes of equal specificity. Default 0. */
  priority?: number;
  /**
   * Largest request body (bytes) this route accepts; never above the server's maxContentSize.
   * Default: 0 for GET, HEAD, OPTIONS and TRACE (no body), else the server's maxContentSize.
   */
  maxContentSize?: number;
}

export interface ErrorPageConfig {
  /** Per-status message overrides (http_errors_messages). */
  messages?: Record<number, string>;
  /** Message for statuses without a specific one (http_errors_default_message). */
  defaultMessage?: string;
  /** Show handler exception messages on the 500 page (http_errors_detailed). Default false. */
  detailed?: boolean;
}

export interface HttpServerOptions {
  log: HttpLog;
  /** Largest accepted request body in bytes (http_max_content_size). Default 10 MiB. */
  maxContentSize?: number;
  /** Largest accepted request head (node's maxHeaderSize). Default 10 KiB like Prosody. */
  maxHeaderSize?: number;
  errorMessages?: ErrorPageConfig;
  /** Peers whose X-Forwarded-For / X-Forwarded-Proto are honoured. Default 127.0.0.1, ::1. */
  trustedProxies?: string[];
  /** Host key used when the Host header is unknown (http_default_host). */
  defaultHost?: string;
  /** How long close() waits for in-flight requests before cutting connections. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** How long an idle keep-alive connection is kept open. Default 15 s. */
  keepAliveTimeoutMs?: number;
  /** Time allowed to receive a complete request head, from the first byte. Default 10 s. */
  headerTimeoutMs?: number;
  /** Time allowed to receive a complete request, head and body. Default 30 s. */
  requestTimeoutMs?: number;
  /**
   * Concurrent connections allowed per client address; over it a new connection is closed at
   * once. Peers in trustedProxies are not capped. 0 or Infinity: no cap. Default 64.
   */
  maxConnectionsPerIp?: number;
  /** Told of every answer sent (metrics); must be quick and must not throw. */
  onAnswer?: (answer: HttpAnswerInfo) => void;
}

/** One answer, for metrics: `route` is the matched route key ("POST host/path"), or undefined. */
export interface HttpAnswerInfo {
  method: string;
  route: string | undefined;
  status: number;
  /** From the request's arrival at the pipeline (its body read) to the answer handed to the socket. */
  seconds: number;
}

export interface InjectOptions {
  method?: string;
  /** Request target as sent on the request line: "/path?query" or "http://host/path". */
  url: string;
  headers?: Record<string, string> | Array<[string, string]>;
  body?: string | Buffer;
  httpVersion?: "1.0" | "1.1";
  ip?: string;
}

export interface InjectResult {
  statusCode: number;
  status: string;
  /** Emitted (Title-Case) header names → values. */
  headers: Record<string, string>;
  body: Buffer;
  text(): string;
  /** Whether the connection would be closed after this response. */
  close: boolean;
}

/** The options a listener's ports and interfaces come from, named in its bind failures. */
export interface ListenOptionNames {
  ports: string;
  interfaces: string;
}

export interface ListenResult {
  address: string;
  port: number;
  /** An https (TLS) port. */
  secure?: boolean;
}

/** How an https port gets its TLS contexts (HttpServer.listen). */
export interface SecureListen {
  /** Settings for clients without SNI or naming no host with its own context. */
  options: SecureContextOptions;
  /** The context for an SNI name (lower case), or undefined for the default one. */
  sni(name: string): SecureContext | undefined;
}
