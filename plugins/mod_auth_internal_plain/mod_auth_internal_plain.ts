/**
 * mod_auth_internal_plain: accounts as Prosody 0.12 stores them with `authentication =
 * "internal_plain"`: keyval store `accounts`, one record per user, `{ password = "…" }` holding the
 * SASLprepped password in clear. Same provider API as mod_auth_internal_hashed (its
 * `ModuleExports["auth_internal_hashed"]` type is the contract), so the web form and prosodyctl
 * use either through `depends("auth_" .. authentication)`.
 *
 * As Prosody's module: set_password keeps the record's other fields; a record without `password`
 * (e.g. a SCRAM record left by internal_hashed) exists but no password matches it; creating an
 * account fires no event, deleting one fires the global `user-deleted` { username, host }.
 */
import { accountRecords, type AuthProvider, type AuthResult, type Module } from "prosody-ts";
import { saslprep } from "prosody-ts/util";
import { createHash, timingSafeEqual } from "node:crypto";

declare module "prosody-ts" {
  interface ModuleExports {
    auth_internal_plain: AuthProvider;
  }
}

export default function (module: Module): void {
  const accounts = accountRecords(module);
  const { validName } = accounts;

  /** The password as Prosody stores it (SASLprepped), or the error code. */
  function prepared(password: string): string | AuthResult {
    if (typeof password !== "string") return [undefined, "no-password"];
    const p = saslprep(password);
    return p === undefined ? [undefined, "password fails SASLprep"] : p;
  }

  const provider: AuthProvider = {
    name: "internal_plain",

    userExists: (username) => accounts.exists(username),

    async createUser(username, password, options) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const p = prepared(password);
      if (typeof p !== "string") return p;
      return accounts.create(username, { password: p }, options?.ifAbsent);
    },

    async setPassword(username, password) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const p = prepared(password);
      if (typeof p !== "string") return p;
      const current = await accounts.get(username);
      if (!current) return [undefined, "no-such-user"];
      return accounts.write(username, { ...current, password: p });
    },

    async deleteUser(username) {
      if (!validName(username)) return [undefined, "invalid-username"];
      return accounts.remove(username);
    },

    async testPassword(username, password) {
      if (!validName(username) || typeof password !== "string") return false;
      const given = saslprep(password);
      const record = await accounts.get(username);
      const stored = record && typeof record.password === "string" ? saslprep(record.password) : undefined;
      if (given === undefined || stored === undefined) return false;
      return sameBytes(given, stored);
    },

    users: () => accounts.users(),
  };

  Object.assign(module.exports, provider);
  module.provides("auth", { ...provider });
}

/** Constant-time comparison: hashing first makes the lengths equal. */
function sameBytes(a: string, b: string): boolean {
  const ha = createHash("sha256").update(a, "utf8").digest();
  const hb = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(ha, hb);
}
