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
import { NameTooLongError, type KeyvalStore, type Module, type ModuleExports, type StoreRecord } from "prosody-ts";
import { cachedPromise, nodeprep, saslprep } from "prosody-ts/util";
import { createHash, timingSafeEqual } from "node:crypto";

type AuthProvider = ModuleExports["auth_internal_hashed"];
type AuthResult = Awaited<ReturnType<AuthProvider["createUser"]>>;

declare module "prosody-ts" {
  interface ModuleExports {
    auth_internal_plain: ModuleExports["auth_internal_hashed"];
  }
}

export default function (module: Module): void {
  // Opened on first use; a failed open (storage unavailable for now) is retried by the next call.
  const store: () => Promise<KeyvalStore> = cachedPromise(() => module.openStore("accounts", "keyval"));

  /** Usernames reach the store only in their nodeprepped form (as with internal_hashed). */
  const validName = (username: string) => typeof username === "string" && username !== "" && nodeprep(username) === username;

  /** The password as Prosody stores it (SASLprepped), or the error code. */
  function prepared(password: string): string | AuthResult {
    if (typeof password !== "string") return [undefined, "no-password"];
    const p = saslprep(password);
    return p === undefined ? [undefined, "password fails SASLprep"] : p;
  }

  function writeFailed(username: string, err: unknown): AuthResult {
    // The storage cannot hold a name this long (internal storage: its file name).
    if (err instanceof NameTooLongError) {
      module.log("info", "Not storing the account of %s: %s", username, err.message);
      return [undefined, "username-too-long"];
    }
    module.log("error", "Unable to store the account of %s: %s", username, err instanceof Error ? err.message : err);
    return [undefined, "unable-to-save-data"];
  }

  async function write(username: string, record: StoreRecord | undefined): Promise<AuthResult> {
    try {
      await (await store()).set(username, record);
      return [true, undefined];
    } catch (err) {
      return writeFailed(username, err);
    }
  }

  const provider: AuthProvider = {
    name: "internal_plain",

    async userExists(username) {
      if (!validName(username)) return false;
      const record = await (await store()).get(username);
      return !!record && Object.keys(record).length > 0;
    },

    async createUser(username, password, options) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const p = prepared(password);
      if (typeof p !== "string") return p;
      if (!options?.ifAbsent) return write(username, { password: p });
      try {
        return (await (await store()).setIfAbsent(username, { password: p })) ? [true, undefined] : [undefined, "user-exists"];
      } catch (err) {
        return writeFailed(username, err);
      }
    },

    async setPassword(username, password) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const p = prepared(password);
      if (typeof p !== "string") return p;
      const current = await (await store()).get(username);
      if (!current || Object.keys(current).length === 0) return [undefined, "no-such-user"];
      return write(username, { ...current, password: p });
    },

    async deleteUser(username) {
      if (!validName(username)) return [undefined, "invalid-username"];
      const result = await write(username, undefined);
      if (result[0]) module.fireGlobalEvent("user-deleted", { username, host: module.host });
      return result;
    },

    async testPassword(username, password) {
      if (!validName(username) || typeof password !== "string") return false;
      const given = saslprep(password);
      const record = await (await store()).get(username);
      const stored = record && typeof record.password === "string" ? saslprep(record.password) : undefined;
      if (given === undefined || stored === undefined) return false;
      return sameBytes(given, stored);
    },

    async users() {
      return (await (await store()).users()).filter((u) => u !== "");
    },
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
