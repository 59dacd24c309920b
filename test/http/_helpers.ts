/** Shared helpers for the HTTP tests: a server on 127.0.0.1:0 and raw-socket exchanges. */
import net from "node:net";
import { HttpServer } from "../../src/http/server.js";
import type { HttpServerOptions } from "../../src/http/types.js";

export interface LogLine {
  level: string;
  msg: string;
}

export async function startServer(
  opts: Partial<HttpServerOptions> = {},
): Promise<{ server: HttpServer; port: number; logs: LogLine[]; base: string }> {
  const logs: LogLine[] = [];
  const server = new HttpServer({ log: (level, msg) => logs.push({ level, msg }), ...opts });
  const [bound] = await server.listen([0], ["127.0.0.1"]);
  return { server, port: bound!.port, logs, base: `http://127.0.0.1:${bound!.port}` };
}

export interface RawResponse {
  version: string;
  statusCode: number;
  reason: string;
  statusLine: string;
  /** Header names exactly as sent, in order. */
  headerList: Array<[string, string]>;
  headers: Record<string, string>;
  body: Buffer;
  text: string;
}

/** Parses one response from the start of `buf`; undefined if incomplete. `head` = no body expected. */
export function parseResponse(buf: Buffer, head = false): { res: RawResponse; used: number } | undefined {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const statusLine = lines[0]!;
  const m = /^HTTP\/(\d\.\d) (\d{3}) ?(.*)$/.exec(statusLine);
  if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
  const headerList: Array<[string, string]> = [];
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    const name = line.slice(0, i);
    const value = line.slice(i + 1).trim();
    headerList.push([name, value]);
    headers[name.toLowerCase()] = value;
  }
  const len = head ? 0 : Number(headers["content-length"] ?? 0);
  if (buf.length < end + 4 + len) return undefined;
  const body = buf.subarray(end + 4, end + 4 + len);
  return {
    res: {
      version: m[1]!,
      statusCode: Number(m[2]),
      reason: m[3]!,
      statusLine,
      headerList,
      headers,
      body,
      text: body.toString("utf8"),
    },
    used: end + 4 + len,
  };
}

export interface RawExchange {
  responses: RawResponse[];
  /** Everything received. */
  raw: Buffer;
  /** Whether the server closed the connection (within the wait). */
  closed: boolean;
  error?: Error;
}

/**
 * Writes `data` on a fresh connection and collects responses. Resolves once `expect`
 * responses were parsed and (if `waitClose`) the server closed, or after `timeoutMs`.
 */
export function raw(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  opts: { expect?: number; waitClose?: boolean; timeoutMs?: number; head?: boolean | boolean[] } = {},
): Promise<RawExchange> {
  const expect = opts.expect ?? 1;
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    const responses: RawResponse[] = [];
    let closed = false;
    let error: Error | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ responses, raw: buf, closed, error });
    };
    const timer = setTimeout(finish, opts.timeoutMs ?? 3000);
    let offset = 0;
    socket.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const head = Array.isArray(opts.head) ? opts.head[responses.length] : opts.head;
        const parsed = parseResponse(buf.subarray(offset), head);
        if (!parsed) break;
        responses.push(parsed.res);
        offset += parsed.used;
      }
      if (responses.length >= expect && !opts.waitClose) finish();
    });
    socket.on("error", (err) => {
      error = err;
    });
    socket.on("close", () => {
      closed = true;
      finish();
    });
    const parts = Array.isArray(data) ? data : [data];
    for (const p of parts) socket.write(p);
  });
}

/** Header names of a response as a sorted set (case-sensitive). */
export function headerNames(res: RawResponse): string[] {
  return res.headerList.map(([n]) => n).sort();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function titleOf(html: string): string | undefined {
  return /<title>([^<]*)<\/title>/.exec(html)?.[1];
}

export function h1Of(html: string): string | undefined {
  return /<h1>([^<]*)<\/h1>/.exec(html)?.[1]?.trim();
}
