/**
 * Validation + deep copy of plain store values, shared by the drivers.
 *
 * Rules (mirroring what a Lua table can hold and what Prosody's encoders accept):
 * - strings, finite numbers, booleans, arrays and plain objects;
 * - `undefined`/`null` object members are dropped (a Lua table cannot hold nil);
 * - `undefined`/`null` array items are rejected (a Lua sequence cannot have holes);
 * - anything else (functions, symbols, bigint, NaN/±Infinity, class instances, cycles) is rejected.
 */
import { StorageError, type KeyvalData, type StoreRecord, type StoreValue } from "./types.js";

const MAX_DEPTH = 127; // util/serialization.lua's limit

/**
 * Where a value is being stored or read, for error messages. A function is called only when an
 * error is raised: hot paths pass a closure instead of formatting a label per call.
 */
export type Where = string | (() => string);

/**
 * `obj[key] = value`, also for the key `__proto__`: a record's keys come from data (map keys, user
 * input), and plain assignment of `__proto__` would set the object's prototype instead of storing
 * the value (silently losing it). Every place that builds a record from keys uses this.
 */
export function setOwn<T>(obj: { [key: string]: T }, key: string, value: T): void {
  if (key === "__proto__") Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

export function whereText(w: Where): string {
  return typeof w === "function" ? w() : w;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Validates `v`; with `build`, returns a deep copy without null/undefined members, else `v` itself. */
function copy(v: unknown, where: Where, depth: number, seen: Set<object>, build: boolean): StoreValue {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      if (!Number.isFinite(v)) throw new StorageError(`${whereText(where)}: cannot store the number ${v}`);
      return v;
    case "object": {
      if (v === null) throw new StorageError(`${whereText(where)}: cannot store null`);
      if (depth >= MAX_DEPTH) throw new StorageError(`${whereText(where)}: value nested too deeply`);
      if (seen.has(v)) throw new StorageError(`${whereText(where)}: value contains a cycle or a shared sub-object`);
      seen.add(v);
      let out: StoreValue;
      if (Array.isArray(v)) {
        const arr: StoreValue[] = build ? new Array(v.length) : [];
        for (let i = 0; i < v.length; i++) {
          const item: unknown = v[i];
          if (item === undefined || item === null) {
            throw new StorageError(`${whereText(where)}: array item ${i + 1} is ${item === null ? "null" : "undefined"} (a Lua sequence cannot hold nil)`);
          }
          const c = copy(item, where, depth + 1, seen, build);
          if (build) arr[i] = c;
        }
        out = build ? arr : (v as StoreValue[]);
      } else if (isPlainObject(v)) {
        const obj: { [key: string]: StoreValue } = {};
        for (const key of Object.keys(v)) {
          const member: unknown = (v as Record<string, unknown>)[key];
          if (member === undefined || member === null) continue;
          const c = copy(member, where, depth + 1, seen, build);
          if (build) setOwn(obj, key, c);
        }
        out = build ? obj : (v as StoreValue);
      } else {
        throw new StorageError(`${whereText(where)}: cannot store a ${describe(v)}`);
      }
      seen.delete(v);
      return out;
    }
    default:
      throw new StorageError(`${whereText(where)}: cannot store a ${typeof v}`);
  }
}

/**
 * Throws StorageError (naming `where`) for unstorable data, like cloneValue, without copying.
 * The value may still hold null/undefined object members (which storing drops).
 */
export function checkValue(v: unknown, where: Where = "storage"): void {
  copy(v, where, 0, new Set(), false);
}

/** A validated deep copy of `v`. Throws StorageError (naming `where`) for unstorable data. */
export function cloneValue(v: unknown, where: Where = "storage"): StoreValue {
  return copy(v, where, 0, new Set(), true);
}

/**
 * A validated deep copy of a keyval record; `undefined` when the record is absent or empty
 * (Prosody: absent and empty are the same state).
 */
export function cloneRecord(rec: unknown, where: Where = "storage"): StoreRecord | undefined {
  if (rec === undefined || rec === null) return undefined;
  if (typeof rec !== "object" || Array.isArray(rec) || !isPlainObject(rec)) {
    throw new StorageError(`${whereText(where)}: a keyval record must be a plain object, got ${describe(rec)}`);
  }
  const out = copy(rec, where, 0, new Set(), true) as StoreRecord;
  for (const _ in out) return out;
  return undefined;
}

/**
 * A validated deep copy of what a keyval store is given: a record (plain object) or a sequence
 * (array); `undefined` when it is absent or empty (Prosody: absent and empty are the same state).
 * An array that also has named members (`Object.assign([x], { a: 1 })`, Lua's "mixed" table) is
 * refused: storing it as a sequence would silently drop the names.
 */
export function cloneKeyval(data: unknown, where: Where = "storage"): KeyvalData | undefined {
  if (!Array.isArray(data)) return cloneRecord(data, where);
  for (const key of Object.keys(data)) {
    if (!/^(?:0|[1-9][0-9]*)$/.test(key)) {
      throw new StorageError(
        `${whereText(where)}: a keyval sequence (array) cannot also have named members (found ${JSON.stringify(key)}); store a record (object) instead`,
      );
    }
  }
  return data.length === 0 ? undefined : (copy(data, where, 0, new Set(), true) as StoreValue[]);
}

/** True for a keyval record with string keys (not a sequence, not absent). */
export function isStoreRecord(v: KeyvalData | StoreValue | undefined): v is StoreRecord {
  return typeof v === "object" && !Array.isArray(v);
}

/**
 * Map changes cannot be applied to a record that is a sequence: a Lua table with both positions
 * and names has no JS form here (see types.ts), so adding a key is refused; removing one is a
 * no-op (a sequence has no string keys). True when there is nothing to write.
 */
export function checkMapChangesOnSequence(changes: Iterable<readonly [string, StoreValue | undefined]>, where: Where): true {
  for (const [key, value] of changes) {
    if (value !== undefined) {
      throw new StorageError(
        `${whereText(where)}: the record is a sequence (a Lua array), so the map key ${JSON.stringify(key)} cannot be added to it`,
      );
    }
  }
  return true;
}

/**
 * A deep copy of a value already known to be plain store data (from our own decoder): no checks,
 * so it is cheap enough to hand out a fresh copy of a cached value on every read.
 */
export function copyStoreValue(v: StoreValue): StoreValue {
  if (typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(copyStoreValue);
  const out: { [key: string]: StoreValue } = {};
  for (const key of Object.keys(v)) setOwn(out, key, copyStoreValue(v[key]!));
  return out;
}

/**
 * Applies map changes (key → new value, or undefined to remove it) to `rec` in place; true when
 * something changed. The one place where a map update meets a record, for every driver that keeps
 * a user's map as one record (the internal files, the map shim over a keyval store). A key
 * `__proto__` is stored as an ordinary own property, never as the object's prototype.
 */
export function applyMapChanges(rec: StoreRecord, changes: Iterable<readonly [string, StoreValue | undefined]>): boolean {
  let changed = false;
  for (const [key, value] of changes) {
    if (value === undefined) {
      if (Object.prototype.hasOwnProperty.call(rec, key)) {
        delete rec[key];
        changed = true;
      }
    } else {
      setOwn(rec, key, value);
      changed = true;
    }
  }
  return changed;
}
