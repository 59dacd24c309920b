/**
 * Prosody's option coercion rules (core/moduleapi.lua get_option_*), as pure functions over a
 * value already looked up host-first-then-global. Problems are logged, not thrown, exactly
 * where Prosody logs them.
 */
import { isAbsolute, resolve } from "node:path";
import type { Logger } from "./logger.js";
import type { OptionValue } from "./types.js";

/** A table value gives its first element (Prosody's get_option_scalar). */
export function scalar(name: string, value: OptionValue | undefined, log: Logger): OptionValue | undefined {
  if (Array.isArray(value)) {
    if (value.length > 1) log("error", "Config option '%s' does not take a list, using just the first item", name);
    return value[0];
  }
  if (value !== null && typeof value === "object") {
    // A non-sequence table: Lua's t[1] is nil for it.
    return undefined;
  }
  return value;
}

export function toOptionString(name: string, value: OptionValue | undefined, log: Logger): string | undefined {
  const v = scalar(name, value, log);
  if (v === undefined) return undefined;
  return typeof v === "object" ? undefined : String(v);
}

/** Lua's tonumber for a string: decimal, hex (0x..), exponents, surrounding spaces allowed. */
export function luaToNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v !== "string") return undefined;
  const s = v.trim();
  if (s === "") return undefined;
  if (/^[-+]?0[xX][0-9a-fA-F]+$/.test(s)) {
    const neg = s.startsWith("-");
    const n = parseInt(s.replace(/^[-+]?0[xX]/, ""), 16);
    return neg ? -n : n;
  }
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

export function toOptionNumber(name: string, value: OptionValue | undefined, log: Logger): number | undefined {
  const v = scalar(name, value, log);
  if (v === undefined) return undefined;
  const n = luaToNumber(v);
  if (n === undefined) log("error", "Config option '%s' not understood, expecting a number", name);
  return n;
}

export function toOptionBoolean(name: string, value: OptionValue | undefined, log: Logger): boolean | undefined {
  const v = scalar(name, value, log);
  if (v === undefined) return undefined;
  if (v === true || v === "true" || v === 1) return true;
  if (v === false || v === "false" || v === 0) return false;
  log("error", "Config option '%s' not understood, expecting true/false", name);
  return undefined;
}

export function toOptionArray(value: OptionValue | undefined): OptionValue[] | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return [...value];
  // A table that is not a sequence has an empty array part.
  if (value !== null && typeof value === "object") return [];
  return [value];
}

export function toOptionSet(value: OptionValue | undefined): Set<OptionValue> | undefined {
  const arr = toOptionArray(value);
  return arr === undefined ? undefined : new Set(arr);
}

export function unionSets(a: Set<OptionValue> | undefined, b: Set<OptionValue> | undefined): Set<OptionValue> | undefined {
  if (!a) return b;
  if (!b) return a;
  return new Set([...a, ...b]);
}

/**
 * get_option_path: a relative value resolves against `parent`, which is either a key of
 * `paths` ("data", "config", "source", "plugins") or a directory; absolute values as they are.
 */
export function resolveOptionPath(
  value: string | undefined,
  parent: string,
  paths: Record<string, string>,
): string | undefined {
  if (value === undefined) return undefined;
  if (isAbsolute(value)) return value;
  const base = Object.prototype.hasOwnProperty.call(paths, parent) ? paths[parent]! : parent;
  return resolve(base, value);
}
