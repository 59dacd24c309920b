/**
 * Internal pieces shared by the two evaluation paths (fast-path.ts and lua-sandbox.ts), so that
 * both give byte-identical results: value shaping, host-name preparation and Include resolution.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import type { OptionValue } from "../types.js";
import type { ConfigSection } from "./types.js";
import { nameprep } from "../../util/stringprep.js";

// --- internal ---

/** What an evaluation path produces; load.ts turns it into a Config. */
export interface RawResult {
  /** Creation order, "*" first. */
  sections: ConfigSection[];
  warnings: string[];
  /** Every file read, the main file first, then each Include in the order read (no repeats). */
  files: string[];
}

/** Names the config environment defines itself (assigning to them is not an option). */
export const BUILTIN_NAMES = new Set([
  "VirtualHost", "Host", "host", "Component", "component", "Include", "include", "RunScript",
]);
export const VIRTUALHOST_NAMES = new Set(["VirtualHost", "Host", "host"]);
export const COMPONENT_NAMES = new Set(["Component", "component"]);
export const INCLUDE_NAMES = new Set(["Include", "include"]);

/** Deeper nesting is treated as an Include loop. */
export const MAX_INCLUDE_DEPTH = 16;

/**
 * Builds an object with keys in a canonical order (integer-like keys first, as JS always
 * orders them, then the rest sorted), so the Lua VM's hash order never leaks out.
 * defineProperty keeps a key such as "__proto__" an ordinary property.
 */
export function makeObject(entries: Map<string, OptionValue>): { [key: string]: OptionValue } {
  const out: { [key: string]: OptionValue } = {};
  for (const key of [...entries.keys()].sort()) {
    Object.defineProperty(out, key, { value: entries.get(key), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const FORBIDDEN_IN_HOST = /[\s\p{Cc}\p{Cf}\p{Co}\p{Cs}\uFFFD@/\\"'<>&]/u;

/**
 * Prosody's nameprep (src/util/stringprep.ts, exact), then rejects characters a domain part cannot
 * hold. COMPAT: real Prosody's nameprep lets an ASCII space, controls or "@" through; we reject
 * them, since no JID could use such a host. Returns undefined for a forbidden name.
 */
export function nameprepHost(name: string): string | undefined {
  const prepped = nameprep(name);
  if (!prepped || FORBIDDEN_IN_HOST.test(prepped)) return undefined;
  return prepped;
}

/** Quotes a user-supplied name for a one-line message. */
export function quote(text: string): string {
  return JSON.stringify(text);
}

/** A short reason for a failed file operation, e.g. "No such file or directory". */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case "ENOENT": return "No such file or directory";
    case "EACCES": case "EPERM": return "Permission denied";
    case "EISDIR": return "Is a directory";
    case "ENOTDIR": return "Not a directory";
    case "ELOOP": return "Too many levels of symbolic links";
    default: return err instanceof Error ? err.message : String(err);
  }
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Files named by `Include "spec"` written in `fromFile`: the path is relative to the including
 * file's directory; a `*`/`?` wildcard in the last component selects every matching entry whose
 * name does not start with ".", sorted by name (no match: no file).
 */
export function resolveInclude(fromFile: string, spec: string): Outcome<string[]> {
  const target = isAbsolute(spec) ? spec : join(dirname(fromFile), spec);
  if (!/[*?]/.test(spec)) return { ok: true, value: [target] };
  const dir = dirname(target);
  const glob = target.slice(dir.length + (dir.endsWith("/") ? 0 : 1));
  if (/[*?]/.test(dir)) {
    return { ok: false, error: `Error loading included ${target}: wildcards are only allowed in the last path component` };
  }
  const pattern = new RegExp(
    "^" + glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$",
    "s",
  );
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    return { ok: false, error: `Error loading included ${target}: ${describeFsError(err)}` };
  }
  // Like Prosody, a matching directory is not skipped: reading it fails ("Is a directory").
  const files = names.sort().filter((name) => !name.startsWith(".") && pattern.test(name)).map((name) => join(dir, name));
  return { ok: true, value: files };
}

/** Reads an included file; the error is the complete message Prosody-style. */
export function readIncluded(file: string): Outcome<Buffer> {
  try {
    return { ok: true, value: readFileSync(file) };
  } catch (err) {
    return { ok: false, error: `Error loading included ${file}: ${describeFsError(err)}` };
  }
}
