/**
 * A record as text, for telling whether two stores hold the same data: `ordered` keeps the key order
 * (what decides the bytes an `internal` file is written with, so a record in another order is
 * written again), otherwise keys are sorted (the content, for verification). Unlike JSON, NaN,
 * ±Infinity and -0 stay distinct.
 */
import type { StoreValue } from "../storage/types.js";

export function fingerprint(value: StoreValue | undefined, ordered: boolean): string {
  if (value === undefined) return "-";
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (Array.isArray(value)) return `[${value.map((v) => fingerprint(v, ordered)).join(",")}]`;
  const keys = Object.keys(value);
  if (!ordered) keys.sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${fingerprint(value[k], ordered)}`).join(",")}}`;
}
