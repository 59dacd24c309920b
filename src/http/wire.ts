/**
 * The wire form of a response: final headers (Title-Case names, Date, Connection, Content-Length),
 * the HTTP/1.0 status line, and complete error answers written straight to a socket.
 */
import http from "node:http";
import type { IncomingMessage } from "node:http";
import { reasonPhrase } from "./codes.js";
import { errorMessage, HTML_CONTENT_TYPE, renderErrorPage } from "./error-page.js";
import { headerValue, isValidHeaderName, reasonText, titleCaseHeader, type ResponseState } from "./response.js";
import type { ErrorPageConfig, HttpLog } from "./types.js";

/** A response ready for the wire. `body` is undefined for HEAD and empty bodies. */
export interface WireResponse {
  statusCode: number;
  reason: string;
  headers: Array<[string, string]>;
  /** Strings are UTF-8; node then writes head and body in one chunk. */
  body: string | Buffer | undefined;
  close: boolean;
}

/** What toWire needs to know about the exchange. */
export interface WireContext {
  method: string;
  path: string;
  isHead: boolean;
  /** Close the connection after this response (forced, server closing, or not persistent). */
  close: boolean;
  /** Whether the client said anything about the connection (HTTP/1.1, or 1.0 + keep-alive). */
  connectionToken: boolean;
  errors: ErrorPageConfig;
  log: HttpLog;
}

/** Status line "HTTP/1.0 …" for HTTP/1.0 requests (node always writes "HTTP/1.1"). */
export class VersionedResponse extends http.ServerResponse {
  // node's internal hook that receives the status line; present on every supported node.
  _storeHeader(firstLine: string, headers: unknown): unknown {
    const req = (this as unknown as { req?: IncomingMessage }).req;
    if (req && req.httpVersionMajor === 1 && req.httpVersionMinor === 0) {
      firstLine = firstLine.replace(/^HTTP\/1\.1 /, "HTTP/1.0 ");
    }
    const parent = http.ServerResponse.prototype as unknown as {
      _storeHeader: (this: unknown, l: string, h: unknown) => unknown;
    };
    return parent._storeHeader.call(this, firstLine, headers);
  }
}

export function validStatus(code: unknown): code is number {
  return typeof code === "number" && Number.isInteger(code) && code >= 100 && code <= 999;
}

let cachedDate = "";
let cachedSecond = -1;

/** RFC 7231 date ("Sun, 29 Nov 2026 06:15:16 GMT"), recomputed once per second. */
export function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedDate = new Date(now).toUTCString();
  }
  return cachedDate;
}

/** Final headers: Title-Case names, Date, Connection, Content-Length (spec §3.5). */
export function toWire(res: ResponseState, ctx: WireContext): WireResponse {
  let statusCode = res.statusCode;
  let close = ctx.close;
  let reason = res.status;
  let rawBody = res.body;
  if (!validStatus(statusCode)) {
    ctx.log("error", `Invalid HTTP status ${String(statusCode)} for ${ctx.method} ${ctx.path}`);
    close = true;
    statusCode = 500;
    reason = undefined;
    res.headers = { content_type: HTML_CONTENT_TYPE };
    rawBody = renderErrorPage(500, reasonPhrase(500), errorMessage(500, ctx.errors));
  }

  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(res.headers)) {
    if (value === undefined || value === null) continue;
    const name = titleCaseHeader(key);
    if (!isValidHeaderName(name)) {
      ctx.log("warn", `Dropping invalid response header name ${JSON.stringify(key)}`);
      continue;
    }
    out.set(name, headerValue(value));
  }
  out.delete("Content-Length");
  out.delete("Transfer-Encoding");

  const custom = out.get("Connection");
  if (custom !== undefined && /(^|,)\s*close\s*(,|$)/i.test(custom)) close = true;
  out.delete("Connection");
  if (!close) out.set("Connection", "Keep-Alive");
  else if (ctx.connectionToken) out.set("Connection", "close");

  if (!out.has("Date")) out.set("Date", httpDate());

  const noBody = statusCode < 200 || statusCode === 204 || statusCode === 304;
  let body: string | Buffer | undefined =
    noBody || rawBody === undefined ? undefined : Buffer.isBuffer(rawBody) ? rawBody : String(rawBody);
  const length = body === undefined ? 0 : typeof body === "string" ? Buffer.byteLength(body, "utf8") : body.length;
  if (statusCode > 199 && statusCode !== 204) out.set("Content-Length", String(length));
  if (length === 0 || ctx.isHead) body = undefined;
  // node sends head + string body as one UTF-8 string, which would re-encode header bytes
  // >= 0x80 (already UTF-8 bytes as Latin-1 chars); a Buffer body keeps the head Latin-1.
  const reasonLine = reasonText(reason ?? reasonPhrase(statusCode));
  if (typeof body === "string" && /[\x80-\xff]/.test(reasonLine + [...out.values()].join(""))) {
    body = Buffer.from(body, "utf8");
  }

  return {
    statusCode,
    reason: reasonLine,
    headers: [...out.entries()],
    body,
    close,
  };
}

/** A complete error answer (page, `Connection: close`) for a connection without a request object. */
export function rawErrorAnswer(code: number, errors: ErrorPageConfig): Buffer {
  const reason = reasonPhrase(code);
  const body = Buffer.from(renderErrorPage(code, reason, errorMessage(code, errors)), "utf8");
  const head =
    `HTTP/1.1 ${code} ${reason}\r\n` +
    `Date: ${httpDate()}\r\n` +
    `Content-Type: ${HTML_CONTENT_TYPE}\r\n` +
    `Content-Length: ${body.length}\r\n` +
    `Connection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, "latin1"), body]);
}
