/**
 * The account records that Prosody's internal auth modules keep: keyval store `accounts`, one
 * record per nodeprepped username. Both auth providers (mod_auth_internal_hashed and
 * mod_auth_internal_plain) differ only in what a record holds and how a password is checked, so
 * naming, reading, writing, creating without overwriting and deleting live here once, with the
 * provider contract other modules reach through `depends("auth_" .. authentication)`.
 */
import { NameTooLongError, type KeyvalStore, type StoreRecord } from "../storage/types.js";
import { cachedPromise } from "../util/cached-promise.js";
import { nodeprep } from "../util/stringprep.js";
import type { Module } from "./types.js";

/** `[true, undefined]` on success, `[undefined, code]` otherwise (Prosody's `true` / `nil, err`). */
export type AuthResult = [true, undefined] | [undefined, AuthError];
/** Error codes; prosodyctl prints them through Prosody's message table. */
export type AuthError = "invalid-username" | "username-too-long" | "no-password" | "password fails SASLprep" | "unable-to-save-data" | "no-such-user" | "user-exists";

/** What an auth module exports and provides as its `auth` item. */
export interface AuthProvider {
  /** Provider name ("internal_hashed"). */
  name?: string;
  userExists(username: string): Promise<boolean>;
  /**
   * Writes a fresh record; overwrites an existing one, as Prosody does — unless `ifAbsent`: then
   * an existing account (even one created a moment ago by another of our processes) is left alone
   * and the result is "user-exists" (our extension).
   */
  createUser(username: string, password: string, options?: { ifAbsent?: boolean }): Promise<AuthResult>;
  /** Changes the password of an existing account (other record fields kept). */
  setPassword(username: string, password: string): Promise<AuthResult>;
  /** Removes the account record and fires the global `user-deleted`. */
  deleteUser(username: string): Promise<AuthResult>;
  testPassword(username: string, password: string): Promise<boolean>;
  /** Every username with an account record. */
  users(): Promise<string[]>;
}

/** The `accounts` store as an auth provider uses it; every method takes the username as given. */
export interface AccountRecords {
  /** Usernames reach the store only in their nodeprepped form. */
  validName(username: string): boolean;
  /** The record, or undefined for none (an empty record counts as none). */
  get(username: string): Promise<StoreRecord | undefined>;
  exists(username: string): Promise<boolean>;
  /** Writes (or with undefined removes) a record; a name the storage cannot hold is "username-too-long". */
  write(username: string, record: StoreRecord | undefined): Promise<AuthResult>;
  /** `write`, or with `ifAbsent` an atomic create that leaves an existing record alone ("user-exists"). */
  create(username: string, record: StoreRecord, ifAbsent: boolean | undefined): Promise<AuthResult>;
  /** Removes the record and fires the global `user-deleted` { username, host }. */
  remove(username: string): Promise<AuthResult>;
  users(): Promise<string[]>;
}

/**
 * The account records of `module`'s host. The store is opened on first use; a failed open
 * (storage unavailable for now) is retried by the next call.
 * @example const accounts = accountRecords(module); if (await accounts.exists("alice")) …
 */
export function accountRecords(module: Module): AccountRecords {
  const store: () => Promise<KeyvalStore> = cachedPromise(() => module.openStore("accounts", "keyval"));
  const validName = (username: string) => typeof username === "string" && username !== "" && nodeprep(username) === username;

  function writeFailed(username: string, err: unknown): AuthResult {
    // The storage cannot hold a name this long (internal storage: its file name); Prosody fails
    // the same way. An expected refusal, not a storage fault.
    if (err instanceof NameTooLongError) {
      module.log("info", "Not storing the account of %s: %s", username, err.message);
      return [undefined, "username-too-long"];
    }
    module.log("error", "Unable to store the account of %s: %s", username, err instanceof Error ? err.message : err);
    return [undefined, "unable-to-save-data"];
  }

  const records: AccountRecords = {
    validName,
    async get(username) {
      const record = await (await store()).get(username);
      // A sequence (array) is not an account record.
      return record && !Array.isArray(record) && Object.keys(record).length > 0 ? record : undefined;
    },
    async exists(username) {
      return validName(username) && (await records.get(username)) !== undefined;
    },
    async write(username, record) {
      try {
        await (await store()).set(username, record);
        return [true, undefined];
      } catch (err) {
        return writeFailed(username, err);
      }
    },
    async create(username, record, ifAbsent) {
      if (!ifAbsent) return records.write(username, record);
      try {
        return (await (await store()).setIfAbsent(username, record)) ? [true, undefined] : [undefined, "user-exists"];
      } catch (err) {
        return writeFailed(username, err);
      }
    },
    async remove(username) {
      const result = await records.write(username, undefined);
      if (result[0]) module.fireGlobalEvent("user-deleted", { username, host: module.host });
      return result;
    },
    async users() {
      return (await (await store()).users()).filter((u) => u !== "");
    },
  };
  return records;
}
