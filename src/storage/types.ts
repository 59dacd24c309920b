/**
 * Storage interfaces, shaped after Prosody's storagemanager (core/storagemanager.lua).
 *
 * Values are plain data: strings, finite numbers, booleans, arrays and objects of those
 * (a Lua table becomes an array when it is a pure 1..n sequence, else an object).
 * `user === null` addresses the host-wide record (Prosody's `nil` user).
 *
 * Every method is async because drivers do I/O; a resolved promise from a write means the
 * data is durable on disk for drivers that persist (Prosody's `true` return).
 * Expected absence is `undefined`; I/O and corruption problems reject with a StorageError.
 */

export type StoreType = "keyval" | "map";

/** A plain-data value a store can hold. */
export type StoreValue = string | number | boolean | StoreValue[] | { [key: string]: StoreValue };
export type StoreRecord = { [key: string]: StoreValue };
/**
 * A keyval record that is a Lua sequence (`{ v1, v2, … }`, keys 1..n), e.g. Snikket's
 * mod_invites_bootstrap list. Stored as Prosody stores a sequence: the items of a `.dat` file
 * (`return { v1; v2; };`), one SQL row with key "" and type json holding the JSON array. Its
 * items cannot be null/undefined (a sequence has no holes), and the array cannot also carry
 * named members: a Lua table with both (a "mixed" table) has no JS form here, so such an array
 * is refused rather than losing the names.
 */
export type StoreSequence = StoreValue[];
/**
 * What a keyval store holds for a user: a record with string keys, or a sequence. A table
 * Prosody wrote reads as an array when it is a pure 1..n sequence (n ≥ 1), else as a record (a
 * mixed table's integer keys then appear as decimal strings, "1", "2"…).
 */
export type KeyvalData = StoreRecord | StoreSequence;

/** Marker for `MapStore.setKeys`: delete this key (Prosody's `store.remove`). */
export const REMOVE: unique symbol = Symbol("storage.remove");
export type Remove = typeof REMOVE;

export interface KeyvalStore {
  readonly type: "keyval";
  /**
   * The record (an object, or an array for a Lua sequence), or undefined when there is none
   * (Prosody: absent and empty are the same).
   */
  get(user: string | null): Promise<KeyvalData | undefined>;
  /** Replace the record; `undefined`/`null`/`{}`/`[]` deletes it. */
  set(user: string | null, data: KeyvalData | null | undefined): Promise<void>;
  /**
   * Writes `data` only if `user` has no record yet, in one atomic step among all our processes;
   * resolves false (and writes nothing) when there is one. Our extension (creating an account
   * without overwriting one registered at the same moment by another process).
   */
  setIfAbsent(user: string | null, data: KeyvalData): Promise<boolean>;
  /** Users that have a record (`null` is not listed; SQL lists the host-wide record as ""). */
  users(): Promise<string[]>;
}

export interface MapStore {
  readonly type: "map";
  get(user: string | null, key: string): Promise<StoreValue | undefined>;
  /** `undefined` deletes the key. */
  set(user: string | null, key: string, value: StoreValue | undefined): Promise<void>;
  /** Several keys of one user in one atomic write. */
  setKeys(user: string | null, changes: Record<string, StoreValue | Remove>): Promise<void>;
  /**
   * Removes `key` of `user` and resolves with the value it held, or undefined when there was none:
   * one atomic step among all our processes (under the file's lock for internal storage, in one
   * transaction for SQL), so of several concurrent takes of one key exactly one gets the value.
   * Our extension to Prosody's store API (for claiming single-use tokens); Prosody itself does not
   * take part in the exclusion.
   */
  take(user: string | null, key: string): Promise<StoreValue | undefined>;
  /**
   * Every user's value for `key`; the host-wide record appears under user "" (as Prosody's SQL does).
   * `key` must be a non-empty string (else rejects, with Prosody's message).
   */
  getAll(key: string): Promise<Map<string, StoreValue>>;
  /** Delete `key` for every user; `key` must be a non-empty string (else rejects, as in Prosody). */
  deleteAll(key: string): Promise<void>;
}

export type Store = KeyvalStore | MapStore;

/**
 * What a storage module provides (Prosody: `module:provides("storage", driver)`), one per host.
 * `open` returns undefined for a store type the driver does not support; the manager then
 * builds a map view over the keyval store of the same name, as Prosody does.
 */
export interface StorageProvider {
  name?: string;
  open(store: string, type: StoreType): Store | undefined;
  /** Delete every record of `user` in every store of this host. */
  purge?(user: string): Promise<void>;
}

export class StorageError extends Error {
  override name = "StorageError";
}

/**
 * A record cannot be written because its user name is longer than the driver can hold (the
 * `internal` driver's file names). Registration paths show it as "username too long".
 */
export class NameTooLongError extends StorageError {
  override name = "NameTooLongError";
}

/**
 * The storage could not be reached for now (a driver failed to open: lock timeout, too many open
 * files, …). Nothing was read or written; the same call may succeed later. HTTP answers it, like
 * any StorageError raised by a handler, with 503 and Retry-After.
 */
export class StorageUnavailableError extends StorageError {
  override name = "StorageUnavailableError";
}
