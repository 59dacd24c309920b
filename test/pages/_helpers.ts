/** Helpers for the invite-page tests: a real server from a config body, requests, HTML and QR readers. */
import QRCode from "qrcode";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import { tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";

export interface PagesServer {
  rt: Runtime;
  port: number;
  dir: string;
  config: string;
  /** The module exports of `name` on `host` (e.g. mod_invites' API). */
  exports<T = any>(host: string, name: string): T;
  get(path: string, opts?: { host?: string; method?: string; headers?: Record<string, string> }): Promise<RawResponse>;
}

/** Starts a server on a free port; `$PORT` and `$DIR` in the config body are replaced. */
export async function startPages(body: string): Promise<PagesServer> {
  setLogLevel("error");
  const port = await freePort();
  const { dir, config } = tempConfig(`data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
${body.replaceAll("$PORT", String(port))}`);
  const rt = await startServer(await loadConfigFile(config), { cwd: dir });
  return {
    rt,
    port,
    dir,
    config,
    exports(host, name) {
      const mod = rt.modules.get(host, name);
      if (!mod) throw new Error(`mod_${name} is not loaded on ${host}`);
      return mod.exports as any;
    },
    get(path, opts = {}) {
      const method = opts.method ?? "GET";
      const extra = Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      return rawRequest(port, `${method} ${path} HTTP/1.1\r\nHost: ${opts.host ?? "example.com"}\r\n${extra}\r\n`, { head: method === "HEAD" });
    },
  };
}

/** Undoes the HTML escaping of attribute values and text. */
export function unescapeHtml(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos);/g, (_m, e: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" })[e]!);
}

/** Every `attr` value of `<tag …>` elements, in document order, unescaped. */
export function attrs(html: string, tag: string, attr: string, filter: (el: string) => boolean = () => true): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(new RegExp(`<${tag}\\b[^>]*>`, "g"))) {
    if (!filter(m[0])) continue;
    const a = new RegExp(`\\s${attr}="([^"]*)"`).exec(m[0]);
    if (a) out.push(unescapeHtml(a[1]!));
  }
  return out;
}

/** Text content of the first `<tag>` (tags inside removed). */
export function text(html: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}\\b[^>]*>([\\s\\S]*?)</${tag}>`).exec(html);
  return m ? unescapeHtml(m[1]!.replace(/<[^>]+>/g, "")).replace(/\s+/g, " ").trim() : undefined;
}

/** `href`s of links whose text is `label`. */
export function linksLabelled(html: string, label: string): string[] {
  const out: string[] = [];
  for (const m of html.matchAll(/<a\b([^>]*)>([\s\S]*?)<\/a>/g)) {
    if (m[2]!.replace(/<[^>]+>/g, "").trim() !== label) continue;
    const href = /\shref="([^"]*)"/.exec(m[1]!);
    if (href) out.push(unescapeHtml(href[1]!));
  }
  return out;
}

/**
 * The module matrix drawn by an SVG from the qrcode package (a path of "M x y.5 h n m dx dy h n …"
 * runs of dark modules), without its quiet zone.
 */
export function svgToMatrix(svg: string): boolean[][] {
  const view = /viewBox="0 0 (\d+) (\d+)"/.exec(svg);
  const path = /<path[^>]*stroke="#000000"[^>]*\sd="([^"]+)"/.exec(svg) ?? /<path[^>]*\sd="([^"]+)"[^>]*stroke="#000000"/.exec(svg);
  if (!view || !path) throw new Error("not a qrcode SVG");
  const size = Number(view[1]);
  const grid = Array.from({ length: size }, () => Array<boolean>(size).fill(false));
  let x = 0;
  let y = 0;
  for (const m of path[1]!.matchAll(/([MmHhVv])\s*(-?[\d.]+)(?:\s+(-?[\d.]+))?/g)) {
    const [, op, a, b] = m;
    const n = Number(a);
    if (op === "M") [x, y] = [n, Number(b)];
    else if (op === "m") [x, y] = [x + n, y + Number(b)];
    else if (op === "h") {
      for (let i = 0; i < n; i++) grid[Math.floor(y)]![x + i] = true;
      x += n;
    } else throw new Error(`unexpected path command ${op}`);
  }
  // strip the quiet zone: the first and last rows/columns with any dark module bound the symbol
  const rows = grid.map((r) => r.some(Boolean));
  const top = rows.indexOf(true);
  const bottom = rows.lastIndexOf(true);
  const cols = grid[0]!.map((_, c) => grid.some((r) => r[c]));
  const left = cols.indexOf(true);
  const right = cols.lastIndexOf(true);
  return grid.slice(top, bottom + 1).map((r) => r.slice(left, right + 1));
}

/** The module matrix the qrcode package computes for `text` (error correction M). */
export function expectedMatrix(text: string): boolean[][] {
  const { size, data } = QRCode.create(text, { errorCorrectionLevel: "M" }).modules;
  return Array.from({ length: size }, (_, r) => Array.from({ length: size }, (_, c) => !!data[r * size + c]));
}

export interface GoldenExchange {
  id: string;
  title: string;
  /** Request line and header lines as curl sent them. */
  request: string[];
  status: string;
  headers: Array<[string, string]>;
}

/** The "### P01 …" / "### A01 …" sections of golden/40-http-pages-*.txt. */
export function parsePagesTranscript(textBody: string): GoldenExchange[] {
  const out: GoldenExchange[] = [];
  for (const sec of textBody.split(/^### /m).slice(1)) {
    const lines = sec.split("\n");
    const m = /^([A-Z]\d+)\s+(.*)$/.exec(lines[0]!);
    if (!m) continue;
    const request = lines.filter((l) => l.startsWith("> ")).map((l) => l.slice(2)).filter((l) => l !== "");
    const resp = lines.filter((l) => l.startsWith("< ")).map((l) => l.slice(2)).filter((l) => l !== "");
    if (!request.length || !resp.length) continue;
    const headers: Array<[string, string]> = [];
    for (const h of resp.slice(1)) {
      const i = h.indexOf(":");
      if (i > 0) headers.push([h.slice(0, i), h.slice(i + 1).trim()]);
    }
    out.push({ id: m[1]!, title: m[2]!, request, status: resp[0]!, headers });
  }
  return out;
}

export function header(headers: Array<[string, string]>, name: string): string | undefined {
  return headers.find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
}

/** Header names, lower-case, without Date, sorted. */
export function headerNames(headers: Array<[string, string]>): string[] {
  return [...new Set(headers.map(([k]) => k.toLowerCase()).filter((k) => k !== "date"))].sort();
}
