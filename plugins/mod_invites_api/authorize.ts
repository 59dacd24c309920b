/**
 * Checking an API key for one request and one scope. Shared by every route that takes our API keys
 * (mod_invites_api's own endpoint, mod_http_admin_api, …): they reach it as
 * `(await module.depends("invites_api")).authorize(request, scope)`.
 *
 * Scopes are our extension. A record without `scopes` is Prosody's (or made by `create` without
 * --scope) and may only create account invites, which is all Prosody's keys can do. `admin` implies
 * every other scope. `expires` (Unix seconds) is our extension too; Prosody ignores both fields.
 *
 * Failures are values, never throws: each route maps a reason to its own status (mod_invites_api
 * keeps Prosody's bare 403 for a missing or wrong key; the admin API answers 401 as Snikket's does).
 */
import type { HttpRequest, MapStore } from "prosody-ts";
import { formdecode, now } from "prosody-ts/util";
import { getKey, previousSecretMatches, secretMatches, type ApiKeyRecord } from "./keys.js";

export const SCOPES = ["create", "read", "revoke", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** What a key made by Prosody (no `scopes` field) may do. */
export const DEFAULT_SCOPES: readonly Scope[] = ["create"];

export type AuthFailure =
  /** No key in the request. */
  | "missing"
  /** An Authorization header that is not `Bearer <id>/<secret>`, or a key without `/`. */
  | "malformed"
  /** No such key id, or a wrong secret: never say which. */
  | "unknown"
  /** A valid key past its `expires`. */
  | "expired"
  /** A valid key whose scopes do not include the one asked for. */
  | "scope";

export type AuthResult =
  | { ok: true; keyId: string; key: ApiKeyRecord; scopes: readonly Scope[] }
  | { ok: false; reason: AuthFailure; keyId?: string };

const BEARER = /^(\S+)\s(\S+)$/;

export function isScope(s: unknown): s is Scope {
  return typeof s === "string" && (SCOPES as readonly string[]).includes(s);
}

/** The scopes a stored record grants (unknown names in it are ignored, not widened). */
export function scopesOf(record: ApiKeyRecord): readonly Scope[] {
  if (!Array.isArray(record.scopes)) return DEFAULT_SCOPES;
  return record.scopes.filter(isScope);
}

export function allows(granted: readonly Scope[], wanted: Scope): boolean {
  return granted.includes("admin") || granted.includes(wanted);
}

/**
 * The `id/secret` a request carries: the Authorization header (Prosody's rule: exactly two
 * space-separated words, the first `Bearer`) or else the `key` query parameter.
 */
export function credentialsOf(request: HttpRequest): { key: string } | { reason: "missing" | "malformed" } {
  const auth = request.headers.authorization;
  if (auth !== undefined) {
    const m = BEARER.exec(auth);
    if (!m || m[1] !== "Bearer") return { reason: "malformed" };
    return { key: m[2]! };
  }
  const key = formdecode(request.url.query).get("key");
  return key ? { key } : { reason: "missing" };
}

/** Checks a request's key against the store for `scope`, at time `at` (Unix seconds). */
export async function authorize(store: MapStore, request: HttpRequest, scope: Scope, at: number = now()): Promise<AuthResult> {
  const cred = credentialsOf(request);
  if (!("key" in cred)) return { ok: false, reason: cred.reason };
  const slash = cred.key.indexOf("/");
  if (slash <= 0 || slash === cred.key.length - 1) return { ok: false, reason: "malformed" };
  const keyId = cred.key.slice(0, slash);
  const record = await getKey(store, keyId);
  const secret = cred.key.slice(slash + 1);
  // After `rotate`, the previous secret works until its grace period ends, then it is unknown.
  if (!record || !(secretMatches(record, secret) || previousSecretMatches(record, secret, at))) return { ok: false, reason: "unknown" };
  // Expiry before scope: an expired key is told it expired whatever it asked for.
  if (typeof record.expires === "number" && at >= record.expires) return { ok: false, reason: "expired", keyId };
  const scopes = scopesOf(record);
  if (!allows(scopes, scope)) return { ok: false, reason: "scope", keyId };
  return { ok: true, keyId, key: record, scopes };
}

/** The JSON error body routes send with a 401/403 for an expired or out-of-scope key. */
export function authErrorBody(result: { reason: AuthFailure }, scope: Scope): string {
  switch (result.reason) {
    case "expired":
      return JSON.stringify({ error: "key-expired", message: "This API key has expired." });
    case "scope":
      return JSON.stringify({ error: "insufficient-scope", message: `This API key lacks the "${scope}" scope.`, scope });
    default:
      return JSON.stringify({ error: "not-authorized", message: "A valid API key is required." });
  }
}
