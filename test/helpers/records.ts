/** Narrowing for tests that read a keyval store which holds records (objects), not sequences. */
import type { KeyvalData, StoreRecord } from "../../src/storage/types.js";

/** `v` as a record; throws (failing the test) when it is absent or a sequence. */
export function recordOf(v: KeyvalData | undefined): StoreRecord {
  if (v === undefined || Array.isArray(v)) throw new Error(`expected a keyval record, got ${v === undefined ? "none" : "a sequence"}`);
  return v;
}
