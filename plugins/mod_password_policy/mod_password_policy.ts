/**
 * mod_password_policy: the password rules other modules apply, as prosody-modules'
 * mod_password_policy applies them. Option `password_policy = { length = 8, exclude_username = true }`;
 * missing keys take those defaults. Reached with `await module.depends("password_policy")`.
 *
 * The rules, in Prosody's order and with its messages:
 * - no or empty password: "No password provided";
 * - fewer UTF-8 bytes than `length` (Lua's `#password`; `length = false` means 8, as `length or 8`
 *   does): "Password is too short (minimum N characters)";
 * - a username is given and the password contains it, both lower-cased in ASCII only (Lua's
 *   `string.lower`): "Password must not include your username". As in Prosody, this check does not
 *   look at `exclude_username` (a `false` there is reported at load as having no effect).
 */
import type { Module } from "prosody-ts";
import { asciiLower } from "prosody-ts/util";

export interface PasswordPolicy {
  /** Minimum length in UTF-8 bytes; 0 disables the check. */
  length: number;
  /** Kept for get_policy(); the username check applies whatever its value, as in Prosody. */
  exclude_username: boolean;
  [option: string]: unknown;
}

export interface PasswordPolicyApi {
  /** undefined when the password is acceptable, else the message to show the user. */
  checkPassword(password: string, info?: { username?: string }): string | undefined;
  /** A copy of the policy in force (the register form uses `length` for `minlength`). */
  getPolicy(): PasswordPolicy;
}

// `depends("password_policy")` is typed for every module (declaration merging).
declare module "prosody-ts" {
  interface ModuleExports {
    password_policy: PasswordPolicyApi;
  }
}

export default function (module: Module): void {
  const policy = readPolicy(module);

  const api: PasswordPolicyApi = {
    checkPassword(password, info) {
      if (typeof password !== "string" || password === "") return "No password provided";
      if (Buffer.byteLength(password, "utf8") < policy.length) {
        return `Password is too short (minimum ${policy.length} characters)`;
      }
      const username = info?.username;
      if (typeof username === "string" && asciiLower(password).includes(asciiLower(username))) {
        return "Password must not include your username";
      }
      return undefined;
    },
    getPolicy: () => ({ ...policy }),
  };
  Object.assign(module.exports, api);
}

// --- Internal helpers ---

function readPolicy(module: Module): PasswordPolicy {
  const raw = module.getOption("password_policy");
  const options = raw && typeof raw === "object" && !Array.isArray(raw) ? raw : {};
  const policy: PasswordPolicy = { ...options, length: 8, exclude_username: true };
  if ("length" in options && options.length !== false) {
    const n = options.length;
    if (typeof n === "number" && Number.isFinite(n) && n >= 0) policy.length = n;
    else module.log("warn", "Ignoring password_policy.length = %s (not a number)", n);
  }
  if ("exclude_username" in options) {
    policy.exclude_username = options.exclude_username !== false;
    if (!policy.exclude_username) {
      module.log("warn", "password_policy.exclude_username = false has no effect (as with Prosody's mod_password_policy)");
    }
  }
  return policy;
}
