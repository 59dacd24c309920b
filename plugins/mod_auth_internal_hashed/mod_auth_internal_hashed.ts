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
import { accountRecords, type AuthError, type AuthProvider, type Module, type StoreRecord } from "prosody-ts";
import { DEFAULT_ITERATIONS, ScramError, isScramRecord, scramHashFromOption, scramRecord, verifyScramPassword } from "prosody-ts/util";

// The provider contract lives in core (prosody-ts): both internal auth modules implement it.
export type { AuthError, AuthProvider, AuthResult } from "prosody-ts";

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

  const accounts = accountRecords(module);
  const { validName } = accounts;

  async function hashed(password: string, count: number): Promise<StoreRecord | AuthError> {
    if (typeof password !== "string") return "no-password";
    try {
      return { ...(await scramRecord(password, { iterations: count, hash })) };
    } catch (err) {
      if (err instanceof ScramError) return "password fails SASLprep";
      throw err;
    }
  }

  const provider: AuthProvider = {
    userExists: (username) => accounts.exists(username),

    async createUser(username, password, options) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const record = await hashed(password, iterations);
      if (typeof record === "string") return [undefined, record];
      return accounts.create(username, record, options?.ifAbsent);
    },

    async setPassword(username, password) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const current = await accounts.get(username);
      if (!current) return [undefined, "no-such-user"];
      const count = Math.max(typeof current.iteration_count === "number" ? current.iteration_count : 0, iterations);
      const record = await hashed(password, count);
      if (typeof record === "string") return [undefined, record];
      const next: StoreRecord = { ...current, ...record };
      delete next.password;
      return accounts.write(username, next);
    },

    async deleteUser(username) {
      if (!validName(username)) return [undefined, "invalid-username"];
      return accounts.remove(username);
    },

    async testPassword(username, password) {
      if (!validName(username)) return false;
      const record = await accounts.get(username);
      if (!record) return false;
      if (!(await verifyScramPassword(record, password, hash))) return false;
      if (!isScramRecord(record, hash) && typeof record.password === "string") {
        // Legacy plaintext record: re-hash it now, as Prosody does on the first login.
        const [ok, err] = await provider.setPassword(username, record.password);
        if (!ok) module.log("warn", "Could not upgrade the plaintext password of %s: %s", username, err);
      }
      return true;
    },

    users: () => accounts.users(),
  };

  Object.assign(module.exports, provider);
  module.provides("auth", { ...provider });
}
