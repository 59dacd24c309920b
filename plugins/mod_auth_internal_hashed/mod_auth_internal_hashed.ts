/**
 * mod_auth_internal_hashed: accounts as SCRAM records in the keyval store `accounts`, exactly
 * as Prosody 0.12 stores them (spec §6.3): `{ salt, stored_key, server_key, iteration_count }`.
 * Other modules reach it with `await module.depends("auth_internal_hashed")` (or through the
 * `auth` provider item). Options: `password_hash` ("SHA-1" default, or "SHA-256"),
 * `default_iteration_count` (10000).
 *
 * As in Prosody, creating an account fires no event (the registering module does that);
 * deleting one fires the global `user-deleted` { username, host }.
 * Legacy plaintext records `{ password = "…" }` are accepted and re-hashed on the first
 * successful testPassword().
 */
import { NameTooLongError, type KeyvalStore, type Module, type StoreRecord } from "prosody-ts";
import { cachedPromise, DEFAULT_ITERATIONS, ScramError, isScramRecord, nodeprep, scramHashFromOption, scramRecord, verifyScramPassword } from "prosody-ts/util";

/** `[true, undefined]` on success, `[undefined, code]` otherwise (Prosody's `true` / `nil, err`). */
export type AuthResult = [true, undefined] | [undefined, AuthError];
/** Error codes; prosodyctl prints them through Prosody's message table. */
export type AuthError = "invalid-username" | "username-too-long" | "no-password" | "password fails SASLprep" | "unable-to-save-data" | "no-such-user" | "user-exists";

export interface AuthProvider {
  /** Provider name ("internal_hashed"). */
  name?: string;
  userExists(username: string): Promise<boolean>;
  /**
   * Writes a fresh record (new salt, default iteration count); overwrites an existing one, as
   * Prosody does — unless `ifAbsent`: then an existing account (even one created a moment ago by
   * another of our processes) is left alone and the result is "user-exists" (our extension).
   */
  createUser(username: string, password: string, options?: { ifAbsent?: boolean }): Promise<AuthResult>;
  /** Re-hashes the password of an existing account (new salt; other record fields kept). */
  setPassword(username: string, password: string): Promise<AuthResult>;
  /** Removes the account record and fires the global `user-deleted`. */
  deleteUser(username: string): Promise<AuthResult>;
  testPassword(username: string, password: string): Promise<boolean>;
  /** Every username with an account record. */
  users(): Promise<string[]>;
}

// `depends("auth_internal_hashed")` is typed for every module (declaration merging); modules
// that pick the auth module by name use `ModuleExports["auth_internal_hashed"]` as the contract.
declare module "prosody-ts" {
  interface ModuleExports {
    auth_internal_hashed: AuthProvider;
  }
}

export default function (module: Module): void {
  const hashName = module.getOptionString("password_hash", "SHA-1") ?? "SHA-1";
  const hash = scramHashFromOption(hashName);
  if (!hash) throw new Error(`SCRAM-${hashName} is not supported (password_hash must be "SHA-1" or "SHA-256")`);
  const iterations = module.getOptionNumber("default_iteration_count", DEFAULT_ITERATIONS) ?? DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1) throw new Error("default_iteration_count must be a positive integer");
  if (iterations < 4096) module.log("warn", "default_iteration_count %d is below 4096, the minimum RFC 5802 suggests", iterations);

  // Opened on first use; a failed open (storage unavailable for now) is retried by the next call.
  const store: () => Promise<KeyvalStore> = cachedPromise(() => module.openStore("accounts", "keyval"));

  /** Usernames reach the store only in their nodeprepped form. */
  const validName = (username: string) => typeof username === "string" && username !== "" && nodeprep(username) === username;

  async function hashed(password: string, count: number): Promise<StoreRecord | AuthError> {
    if (typeof password !== "string") return "no-password";
    try {
      return { ...(await scramRecord(password, { iterations: count, hash })) };
    } catch (err) {
      if (err instanceof ScramError) return "password fails SASLprep";
      throw err;
    }
  }

  async function write(username: string, record: StoreRecord | undefined): Promise<AuthResult> {
    try {
      await (await store()).set(username, record);
      return [true, undefined];
    } catch (err) {
      return writeFailed(username, err);
    }
  }

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

  const provider: AuthProvider = {
    async userExists(username) {
      if (!validName(username)) return false;
      const record = await (await store()).get(username);
      return !!record && Object.keys(record).length > 0;
    },

    async createUser(username, password, options) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const record = await hashed(password, iterations);
      if (typeof record === "string") return [undefined, record];
      if (!options?.ifAbsent) return write(username, record);
      try {
        return (await (await store()).setIfAbsent(username, record)) ? [true, undefined] : [undefined, "user-exists"];
      } catch (err) {
        return writeFailed(username, err);
      }
    },

    async setPassword(username, password) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const current = await (await store()).get(username);
      if (!current || Object.keys(current).length === 0) return [undefined, "no-such-user"];
      const count = Math.max(typeof current.iteration_count === "number" ? current.iteration_count : 0, iterations);
      const record = await hashed(password, count);
      if (typeof record === "string") return [undefined, record];
      const next: StoreRecord = { ...current, ...record };
      delete next.password;
      return write(username, next);
    },

    async deleteUser(username) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const result = await write(username, undefined);
      if (result[0]) module.fireGlobalEvent("user-deleted", { username, host: module.host });
      return result;
    },

    async testPassword(username, password) {
      if (!validName(username)) return false;
      const record = await (await store()).get(username);
      if (!record) return false;
      if (!(await verifyScramPassword(record, password, hash))) return false;
      if (!isScramRecord(record, hash) && typeof record.password === "string") {
        // Legacy plaintext record: re-hash it now, as Prosody does on the first login.
        const [ok, err] = await provider.setPassword(username, record.password);
        if (!ok) module.log("warn", "Could not upgrade the plaintext password of %s: %s", username, err);
      }
      return true;
    },

    async users() {
      return (await (await store()).users()).filter((u) => u !== "");
    },
  };

  Object.assign(module.exports, provider);
  module.provides("auth", { ...provider });
}
