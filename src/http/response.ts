/**
 * Response-side helpers: the mutable response object handed to handlers, and the
 * conversion of its headers to wire form (Title-Case names, safe values).
 */
import { NameMemo } from "./name-memo.js";
import type { HttpResponse } from "./types.js";

const titles = new NameMemo(
  (name) =>
    name
      .replace(/_/g, "-")
      .toLowerCase()
      .replace(/(^|-)([a-z])/g, (_m, sep: string, ch: string) => sep + ch.toUpperCase()),
  2000,
);

/** `content_type` / `content-type` / `CONTENT_TYPE` → `Content-Type` (`etag` → `Etag`). */
export function titleCaseHeader(name: string): string {
  return titles.get(name);
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function isValidHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

/**
 * Makes a header value safe for the wire: CR/LF (header injection) become spaces, other
 * control characters are dropped, and non-ASCII text is sent as its UTF-8 bytes (returned
 * as a Latin-1 string, one char per byte, which is how node writes header values).
 */
const PLAIN_VALUE = /^[\t\x20-\x7e]*$/;

export function headerValue(value: unknown): string {
  const plain = typeof value === "string" ? value : String(value);
  if (PLAIN_VALUE.test(plain)) return plain; // the common case: nothing to change
  let text = plain.replace(/[\r\n]+/g, " ").replace(/[\x00-\x08\x0a-\x1f\x7f]/g, "");
  if (/[^\x00-\x7f]/.test(text)) text = Buffer.from(text, "utf8").toString("latin1");
  return text;
}

/** A reason phrase safe for the status line. */
export function reasonText(value: unknown): string {
  return headerValue(value).replace(/\t/g, " ");
}

export class ResponseState implements HttpResponse {
  statusCode = 200;
  status?: string;
  headers: Record<string, string> = {};
  body?: string | Buffer;
  private done = false;

  constructor(private readonly flush: (response: ResponseState) => void) {}

  get sent(): boolean {
    return this.done;
  }

  send(body?: string | Buffer): void {
    if (this.done) return;
    if (body !== undefined) this.body = body;
    this.done = true;
    this.flush(this);
  }
}
