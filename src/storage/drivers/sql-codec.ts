/**
 * Value encoding of mod_storage_sql (`type` + `value` columns of table "prosody") and a JSON
 * encoder that writes what Prosody's util/json.lua writes for the same data:
 *
 * - `string`  → raw string              - `number` → decimal text (JS String(n): 10000, 1.5)
 * - `boolean` → "true" / "false"        - `json`   → objects and arrays
 *
 * JSON details: objects for string-keyed tables, arrays for non-empty sequences, `{}` for an empty
 * table — an empty object *and* an empty array, as Prosody writes (so `[]` reads back as `{}`; Lua
 * has no difference) —, no `null` ever (members that are null/undefined are skipped), non-ASCII
 * emitted raw, control characters as \b \f \n \r \t or `\u00XX` (uppercase hex), `/` not escaped.
 *
 * Decoding follows Prosody: unknown `type`, unparsable numbers or JSON → error for the whole read;
 * boolean is `value == "true"`; a JSON object with util/json's `__array`/`__hash` members (mixed Lua
 * tables) is merged back (array items under keys "1".."n", hash keys stringified). JSON `null` (which
 * Prosody never writes) is treated as absent inside objects.
 */
import { cloneValue, setOwn, whereText, type Where } from "../values.js";
import { StorageError, type StoreValue } from "../types.js";

export type SqlType = "string" | "number" | "boolean" | "json";

const NEEDS_ESCAPE = /[\u0000-\u001f"\\]/;

function quote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  let out = '"';
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(last, i);
    last = i + 1;
    switch (c) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += "\\\\"; break;
      case 0x08: out += "\\b"; break;
      case 0x0c: out += "\\f"; break;
      case 0x0a: out += "\\n"; break;
      case 0x0d: out += "\\r"; break;
      case 0x09: out += "\\t"; break;
      default: out += "\\u00" + c.toString(16).toUpperCase().padStart(2, "0");
    }
  }
  return out + s.slice(last) + '"';
}

function emit(v: StoreValue): string {
  switch (typeof v) {
    case "string":
      return quote(v);
    case "number":
      return String(v);
    case "boolean":
      return v ? "true" : "false";
  }
  if (Array.isArray(v)) return v.length ? "[" + v.map(emit).join(",") + "]" : "{}";
  const parts: string[] = [];
  for (const key of Object.keys(v)) parts.push(quote(key) + ":" + emit(v[key]!));
  return "{" + parts.join(",") + "}";
}

/** util/json-compatible JSON text of a (validated) value. */
export function encodeJson(v: StoreValue): string {
  // JSON.stringify writes the same text for a validated value unless it holds an empty array
  // ("[]" where util/json writes "{}") or an escape we write differently (\u001f vs \u001F, lone
  // surrogates): both show in its output, and then the exact encoder runs instead.
  const fast = JSON.stringify(v);
  if (!fast.includes("[]") && !fast.includes("\\u")) return fast;
  return emit(v);
}

/** Encodes a value for the `type`/`value` columns; throws StorageError (naming `where`) if unstorable. */
export function encodeValue(value: unknown, where: Where): { type: SqlType; value: string } {
  switch (typeof value) {
    case "string":
      return { type: "string", value };
    case "number":
      if (!Number.isFinite(value)) throw new StorageError(`${whereText(where)}: cannot store the number ${value}`);
      return { type: "number", value: String(value) };
    case "boolean":
      return { type: "boolean", value: value ? "true" : "false" };
  }
  return { type: "json", value: encodeJson(cloneValue(value, where)) };
}

function fromJson(v: unknown, where: Where): StoreValue | undefined {
  if (v === null) return undefined;
  if (typeof v !== "object") return v as StoreValue;
  if (Array.isArray(v)) {
    return v.map((item, i) => {
      const out = fromJson(item, where);
      if (out === undefined) throw new StorageError(`${whereText(where)}: JSON null at array index ${i} cannot be represented`);
      return out;
    });
  }
  const obj = v as Record<string, unknown>;
  const out: { [key: string]: StoreValue } = {};
  let plain = 0;
  for (const key of Object.keys(obj)) {
    if (key === "__array" || key === "__hash") continue;
    const m = fromJson(obj[key], where);
    if (m !== undefined) {
      setOwn(out, key, m);
      plain++;
    }
  }
  const arr = obj.__array;
  const hash = obj.__hash;
  if (Array.isArray(arr)) {
    const items = fromJson(arr, where) as StoreValue[];
    if (plain === 0 && !Array.isArray(hash)) return items;
    items.forEach((item, i) => (out[String(i + 1)] = item));
  } else if (arr !== undefined && arr !== null) {
    const m = fromJson(arr, where);
    if (m !== undefined) out.__array = m;
  }
  if (Array.isArray(hash)) {
    for (let i = 0; i + 1 < hash.length; i += 2) {
      const m = fromJson(hash[i + 1], where);
      if (m !== undefined) setOwn(out, String(hash[i]), m);
    }
  } else if (hash !== undefined && hash !== null) {
    const m = fromJson(hash, where);
    if (m !== undefined) out.__hash = m;
  }
  return out;
}

/** Decodes a row's `type`/`value`; undefined only for a JSON `null` value. */
export function decodeValue(type: unknown, value: unknown, where: Where): StoreValue | undefined {
  if (typeof value !== "string") {
    if (typeof value === "number" && type === "number") return value; // a numeric cell written by someone else
    throw new StorageError(`${whereText(where)}: the value column is not text`);
  }
  switch (type) {
    case "string":
      return value;
    case "number": {
      const n = value.trim() === "" ? NaN : Number(value);
      if (!Number.isFinite(n)) throw new StorageError(`${whereText(where)}: cannot parse number ${JSON.stringify(value)}`);
      return n;
    }
    case "boolean":
      return value === "true";
    case "json": {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch (err) {
        throw new StorageError(`${whereText(where)}: invalid JSON: ${err instanceof Error ? err.message : err}`);
      }
      return fromJson(parsed, where);
    }
    default:
      throw new StorageError(`${whereText(where)}: unknown value type ${JSON.stringify(type)}`);
  }
}
