/**
 * Reads the transcripts captured from real Prosody in ../shared/spec/golden (see its README):
 * CLI runs ("$ command", then stdout/stderr blocks with byte counts, then the exit code) and
 * HTTP exchanges (curl -sv dumps).
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as assert from "uvu/assert";

export const GOLDEN_DIR = [
  process.env.PROSODY_GOLDEN_DIR,
  resolve(import.meta.dirname, "../../../shared/spec/golden"),
  resolve(process.cwd(), "../shared/spec/golden"),
].find((d): d is string => !!d && existsSync(d));

export function goldenFile(name: string): Buffer | undefined {
  return GOLDEN_DIR ? readFileSync(join(GOLDEN_DIR, name)) : undefined;
}

export interface CliRun {
  command: string;
  argv: string[];
  stdout: string;
  stderr: string;
  exit: number;
}

/** Splits a bash command line: backslash escapes, '…', "…" and $'…' (ANSI-C) quoting. */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === " " || c === "\t") {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === "\\") {
      cur += line[++i] ?? "";
    } else if (c === "$" && line[i + 1] === "'") {
      i += 2;
      for (; i < line.length && line[i] !== "'"; i++) {
        if (line[i] === "\\") {
          const e = line[++i];
          cur += e === "t" ? "\t" : e === "n" ? "\n" : e === "\\" ? "\\" : e === "'" ? "'" : `\\${e}`;
        } else cur += line[i];
      }
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      cur += line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      for (i++; i < line.length && line[i] !== '"'; i++) cur += line[i] === "\\" ? line[++i] : line[i];
    } else cur += c;
  }
  if (inWord) words.push(cur);
  return words;
}

/** Parses every "$ …" run whose output blocks have byte counts. */
export function parseCliTranscript(buf: Buffer): CliRun[] {
  const runs: CliRun[] = [];
  let pos = 0;
  const readLine = () => {
    const nl = buf.indexOf(0x0a, pos);
    const end = nl < 0 ? buf.length : nl;
    const line = buf.subarray(pos, end).toString("utf8");
    pos = end + 1;
    return line;
  };
  const readBlock = (label: string): string | undefined => {
    const header = readLine();
    const m = new RegExp(`^--- ${label} \\((\\d+) bytes\\) ---$`).exec(header);
    if (!m) return undefined;
    const n = Number(m[1]);
    const text = buf.subarray(pos, pos + n).toString("utf8");
    pos += n;
    return text;
  };
  while (pos < buf.length) {
    const line = readLine();
    if (!line.startsWith("$ ")) continue;
    const save = pos;
    const stdout = readBlock("stdout");
    const stderr = stdout === undefined ? undefined : readBlock("stderr");
    if (stdout === undefined || stderr === undefined) {
      pos = save;
      continue;
    }
    let exitLine = readLine();
    while (exitLine === "" && pos < buf.length) exitLine = readLine();
    const m = /^--- exit code: (\d+)$/.exec(exitLine);
    runs.push({ command: line.slice(2), argv: shellWords(line.slice(2)), stdout, stderr, exit: m ? Number(m[1]) : NaN });
  }
  return runs;
}

export interface HttpCase {
  id: string;
  title: string;
  command: string;
  /** Request line and header lines as curl sent them. */
  request: string[];
  /** Request body (from curl's --data), if any. */
  body?: string;
  /** Status line and headers received, or undefined when Prosody sent nothing parseable. */
  status?: string;
  headers: Array<[string, string]>;
  bareStatus: boolean;
}

/** Parses "### NN title" sections of a curl -sv transcript. */
export function parseHttpTranscript(buf: Buffer): HttpCase[] {
  const text = buf.toString("utf8");
  const cases: HttpCase[] = [];
  const sections = text.split(/^### /m).slice(1);
  for (const sec of sections) {
    const lines = sec.split("\n");
    const head = lines[0]!;
    const m = /^(\d+)\s+(.*)$/.exec(head);
    if (!m) continue;
    const cmd = lines.find((l) => l.startsWith("$ curl"));
    if (!cmd) continue;
    const request = lines.filter((l) => l.startsWith("> ")).map((l) => l.slice(2)).filter((l) => l !== "");
    const resp = lines.filter((l) => l.startsWith("< ")).map((l) => l.slice(2)).filter((l) => l !== "");
    const data = /--data (\S+)/.exec(cmd);
    const headers: Array<[string, string]> = [];
    for (const h of resp.slice(1)) {
      const i = h.indexOf(":");
      if (i > 0) headers.push([h.slice(0, i), h.slice(i + 1).trim()]);
    }
    cases.push({
      id: m[1]!,
      title: m[2]!,
      command: cmd,
      request,
      body: data ? data[1] : undefined,
      status: resp[0],
      headers,
      bareStatus: resp.length === 1,
    });
  }
  return cases;
}

// --- headers we add to the invite apps' responses (README "Differences from Prosody") ---

/**
 * Added to every response of the apps whose pages or redirects carry invite tokens or API keys
 * (mod_invites_api, mod_invites_page, mod_invites_register_web), which Prosody sends without them.
 * Lower-case name → value. A handler may send a stricter Cache-Control that still has no-store.
 */
export const TOKEN_PAGE_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy": "frame-ancestors 'none'",
};

const TOKEN_APP_BASES = ["/invites_api", "/invites_page", "/register"];

/**
 * Whether a golden exchange was answered by one of those apps: the path is under an app's base
 * and Prosody's answer came from the app (its routes carry CORS headers; its redirects are 301s).
 */
export function answeredByTokenApp(target: string, refStatus: number, refHeaderNames: readonly string[]): boolean {
  const path = target.replace(/^[a-z]+:\/\/[^/]*/i, "").split("?")[0]!;
  const underApp = TOKEN_APP_BASES.some((b) => path === b || path.startsWith(`${b}/`));
  const fromApp = refStatus === 301 || refHeaderNames.some((n) => n.toLowerCase() === "access-control-allow-methods");
  return underApp && fromApp;
}

/**
 * Added to the translated HTML pages (landing, setup, register form and its result pages), which
 * Prosody sends in English only: the page's language, and that it depends on Accept-Language.
 */
export const LANGUAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-language": "en",
  vary: "Accept-Language",
};

/** Whether a golden exchange is one of those pages: an HTML answer of the pages' apps (not a static file). */
export function translatedPage(target: string, refHeaders: ReadonlyArray<readonly [string, string]>): boolean {
  const path = target.replace(/^[a-z]+:\/\/[^/]*/i, "").split("?")[0]!;
  const isPage = path === "/invites_page" || path.startsWith("/invites_page/setup/") || path === "/register";
  const html = refHeaders.some(([k, v]) => k.toLowerCase() === "content-type" && v.startsWith("text/html"));
  return isPage && html;
}

/**
 * Golden header names (lower-case) plus ours when `added` (and the language headers when
 * `translated`), sorted and without duplicates.
 */
export function withTokenHeaders(names: readonly string[], added: boolean, translated = false): string[] {
  const all = names.map((n) => n.toLowerCase());
  if (added) all.push(...Object.keys(TOKEN_PAGE_HEADERS));
  if (translated) all.push(...Object.keys(LANGUAGE_HEADERS));
  return [...new Set(all)].sort();
}

/** The language headers are there with their (English) values when `translated`, and absent otherwise. */
export function assertLanguageHeaders(header: (name: string) => string | undefined, translated: boolean, label: string): void {
  for (const [name, value] of Object.entries(LANGUAGE_HEADERS)) assert.is(header(name), translated ? value : undefined, `${label}: ${name}`);
}

/** Our added headers are there with their values when `added`, and absent otherwise. */
export function assertTokenHeaders(header: (name: string) => string | undefined, added: boolean, label: string): void {
  for (const [name, value] of Object.entries(TOKEN_PAGE_HEADERS)) {
    const got = header(name);
    if (!added) assert.is(got, undefined, `${label}: no ${name} outside the invite apps`);
    else if (name === "cache-control") assert.ok(got !== undefined && /(^|,)\s*no-store\s*(,|$)/.test(got), `${label}: ${name} has no-store (${got})`);
    else assert.is(got, value, `${label}: ${name}`);
  }
}
