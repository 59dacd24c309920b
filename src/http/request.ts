/**
 * Request-side helpers: request-target parsing and path normalisation, the header map, the
 * Host key and the client address. Pure functions, no I/O.
 */
import { NameMemo } from "./name-memo.js";
import type { HttpUrl } from "./types.js";

export interface ParsedTarget {
  /** Normalised, percent-decoded path; undefined when the path climbs above the root. */
  path: string | undefined;
  url: HttpUrl;
}

const ABSOLUTE_FORM = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/s;

/**
 * Parses a request target (origin-form "/p?q" or absolute-form "http://h:1/p?q").
 * "//"+ runs are collapsed before percent-decoding (so "%2F%2F" survives as "//"); a path
 * whose ".." segments climb above the root yields `path: undefined` (→ 400 "Invalid path").
 */
export function parseTarget(target: string): ParsedTarget {
  const url: HttpUrl = { path: "/" };
  let rest = target;
  const abs = ABSOLUTE_FORM.exec(target);
  if (abs) {
    url.scheme = abs[1]!.toLowerCase();
    const authority = abs[2]!.replace(/^.*@/s, "");
    const port = /:(\d+)$/.exec(authority);
    url.host = port ? authority.slice(0, port.index) : authority;
    if (port) url.port = Number(port[1]);
    rest = abs[3]!;
  }
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf("?");
  let rawPath = q >= 0 ? rest.slice(0, q) : rest;
  if (q >= 0) url.query = rest.slice(q + 1);
  if (!rawPath.startsWith("/")) rawPath = "/" + rawPath;
  rawPath = rawPath.replace(/\/{2,}/g, "/");
  url.path = rawPath;
  const decoded = percentDecode(rawPath);
  return { path: climbsAboveRoot(decoded) ? undefined : decoded, url };
}

function climbsAboveRoot(path: string): boolean {
  let depth = 0;
  for (const segment of path.split("/")) {
    if (segment === "..") {
      if (--depth < 0) return true;
    } else if (segment !== "" && segment !== ".") {
      depth++;
    }
  }
  return false;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * Byte-wise percent-decoding that never throws: "%XX" becomes the byte, anything else (a
 * lone "%", "%zz") is kept literally. The bytes are read as UTF-8 when valid, otherwise as
 * Latin-1 (one char per byte), so invalid sequences like "%FF" still route (and 404).
 */
export function percentDecode(text: string): string {
  if (!text.includes("%")) return text;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x25 && HEX.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      // Non-ASCII in the target (only possible via inject()): keep its UTF-8 bytes.
      const cp = text.codePointAt(i)!;
      for (const b of Buffer.from(String.fromCodePoint(cp), "utf8")) bytes.push(b);
      if (cp > 0xffff) i++;
    }
  }
  const buf = Buffer.from(bytes);
  try {
    return UTF8.decode(buf);
  } catch {
    return buf.toString("latin1");
  }
}

/** Raw header name → Prosody's key (`Content-Type` → `content_type`); names repeat across requests. */
const headerKeys = new NameMemo((raw) => raw.toLowerCase().replace(/-/g, "_"), 1000);

/**
 * Header map from node's rawHeaders: lower-case, '-' → '_', duplicates joined with ','.
 * node hands values over as Latin-1 (one char per byte); valid UTF-8 is decoded, so that a
 * value echoed into a response header round-trips (response headers are sent as UTF-8).
 */
export function headerMap(rawHeaders: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = Object.create(null);
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = headerKeys.get(rawHeaders[i]!);
    let value = rawHeaders[i + 1]!;
    if (/[\x80-\xff]/.test(value) && !/[^\x00-\xff]/.test(value)) {
      try {
        value = UTF8.decode(Buffer.from(value, "latin1"));
      } catch {
        // not UTF-8: keep the Latin-1 reading
      }
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  return headers;
}

/**
 * The HTTP host key: the absolute-form authority if any, else the Host header, minus a
 * trailing ":port". Undefined when missing, empty, or containing whitespace/controls
 * (→ 400 "Missing or invalid 'Host' header").
 */
export function hostKey(hostHeader: string | undefined, url: HttpUrl): string | undefined {
  const raw = url.host !== undefined && url.host !== "" ? url.host : hostHeader;
  if (raw === undefined) return undefined;
  const host = raw.trim().replace(/:\d*$/, "");
  if (host === "" || /[\s\x00-\x1f\x7f]/.test(host)) return undefined;
  return host;
}

/** "::ffff:1.2.3.4" → "1.2.3.4". */
export function normaliseIp(ip: string | undefined): string {
  if (!ip) return "";
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

/**
 * Client address and scheme behind trusted proxies: the right-most X-Forwarded-For entry
 * that is not itself a trusted proxy, and `secure` from `X-Forwarded-Proto: https`.
 */
export function clientInfo(
  peer: string,
  headers: Record<string, string>,
  trusted: ReadonlySet<string>,
): { ip: string; secure: boolean } {
  if (!trusted.has(peer)) return { ip: peer, secure: false };
  let ip = peer;
  const forwarded = headers.x_forwarded_for;
  if (forwarded) {
    const hops = forwarded.split(",").map((s) => normaliseIp(s.trim())).filter(Boolean);
    ip = hops[0] ?? peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      if (!trusted.has(hops[i]!)) {
        ip = hops[i]!;
        break;
      }
    }
  }
  const proto = headers.x_forwarded_proto?.split(",")[0]?.trim().toLowerCase();
  return { ip, secure: proto === "https" };
}
