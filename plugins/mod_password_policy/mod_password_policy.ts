/**
 * mod_password_policy: the password rules other modules apply (prosody-modules'
 * mod_password_policy behaviour). Option `password_policy = { length = 8, exclude_username = true }`;
 * missing keys take those defaults. Reached with `await module.depends("password_policy")`.
 *
 * Difference from Prosody: `length` counts characters (Unicode code points), where Prosody counts
 * UTF-8 bytes, so a password of 4 two-byte letters is "too short" here.
 */
import type { Module } from "prosody-ts";

export interface PasswordPolicy {
  /** Minimum length in characters; 0 (or false in the config) disables the check. */
  length: number;
  /** Refuse passwords that contain the username (case-insensitively). */
  exclude_username: boolean;
  [option: string]: unknown;
}

export interface PasswordPolicyApi {
  /** undefined when the password is acceptable, else the message to show the user. */
  checkPassword(password: string, info?: { username?: string }): string | undefined;
  /** A copy of the policy in force (the register form uses `length` for `minlength`). */
  getPolicy(): PasswordPolicy;
}

export default function (module: Module): void {
  const policy = readPolicy(module);

  const api: PasswordPolicyApi = {
    checkPassword(password, info) {
      if (typeof password !== "string" || password === "") return "No password provided";
      if (policy.length > 0 && [...password].length < policy.length) {
        return `Password is too short (minimum ${policy.length} characters)`;
      }
      const username = info?.username;
      if (policy.exclude_username && typeof username === "string" && username !== "") {
        if (password.toLowerCase().includes(username.toLowerCase())) return "Password must not include your username";
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
  if ("length" in options) {
    const n = options.length;
    if (typeof n === "number" && Number.isFinite(n) && n >= 0) policy.length = Math.floor(n);
    else if (n === false) policy.length = 0;
    else module.log("warn", "Ignoring password_policy.length = %s (not a number)", n);
  }
  if ("exclude_username" in options) policy.exclude_username = options.exclude_username !== false;
  return policy;
}
