/**
 * API keys in map store `invite_api_keys` (host-wide, key = key id), as prosody-modules'
 * mod_invites_api stores them: { id, token, name?, created_at, allowed_methods = { GET, POST } }.
 *
 * Deliberate difference: by default the secret is not stored; `secret_hash` = "sha256:<hex>" is
 * stored instead, so a copy of the store grants nothing. Records holding Prosody's plaintext
 * `token` keep working. `invites_api_plaintext_keys = true` writes Prosody-identical records (for
 * a real Prosody serving the API from the same data).
 */
import { hash, timingSafeEqual } from "node:crypto";
import type { MapStore, Module, StoreRecord } from "prosody-ts";
import { id, now } from "prosody-ts/util";

export interface ApiKeyRecord {
  id: string;
  token?: string;
  secret_hash?: string;
  name?: string;
  created_at: number;
  allowed_methods?: Record<string, boolean>;
  /** Our extension (authorize.ts): what the key may do; absent = create only, as Prosody's keys. */
  scopes?: string[];
  /** Our extension: Unix seconds after which the key is refused (401); absent = never. */
  expires?: number;
  /** Our extension: the key's own rate limit ("100/minute"); absent = the host's invites_api_rate. */
  rate?: string;
  /** Our extension (rotate): the secret before the last rotation, as "sha256:<hex>"… */
  previous_secret_hash?: string;
  /** …accepted until these Unix seconds (the grace period). */
  previous_expires?: number;
  /** Our extension: when the secret was last rotated (Unix seconds). */
  rotated_at?: number;
}

/** What `create` may add to a key beyond Prosody's record (none of it by default). */
export interface KeyOptions {
  scopes?: string[];
  expires?: number;
  rate?: string;
}

const HASH_PREFIX = "sha256:";

function sha256(s: string): Buffer {
  return hash("sha256", s, "buffer"); // one-shot: a fraction of createHash()'s cost per request
}

/** Constant-time for equal-length inputs; hashing first makes the lengths equal. */
function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected));
}

/**
 * Secrets that recently matched, per stored hash: a repeat request with the same key is then checked
 * with one constant-time byte comparison instead of a SHA-256 (a measurable share of a request).
 * Keyed by the stored `secret_hash`/`token` text, so a changed or deleted key never matches from here.
 */
const verified = new Map<string, Buffer>();
const VERIFIED_MAX = 1024;

function remember(stored: string, secret: Buffer): void {
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
  verified.set(stored, secret);
}

export function secretMatches(record: ApiKeyRecord, secret: string): boolean {
  const stored = typeof record.secret_hash === "string" ? record.secret_hash : record.token;
  if (typeof stored !== "string") return false;
  const given = Buffer.from(secret, "utf8");
  const known = verified.get(stored);
  if (known && known.length === given.length) return timingSafeEqual(known, given);
  const ok = checkSecret(record, secret);
  if (ok) remember(stored, given);
  return ok;
}

function checkSecret(record: ApiKeyRecord, secret: string): boolean {
  if (typeof record.secret_hash === "string" && record.secret_hash.startsWith(HASH_PREFIX)) {
    const expected = Buffer.from(record.secret_hash.slice(HASH_PREFIX.length), "hex");
    const got = sha256(secret);
    return expected.length === got.length && timingSafeEqual(expected, got);
  }
  if (typeof record.token === "string") return sameSecret(secret, record.token);
  return false;
}

export function openKeyStore(module: Module): Promise<MapStore> {
  return module.openStore("invite_api_keys", "map");
}

/** The stored form of a secret: its SHA-256, or the secret itself with invites_api_plaintext_keys. */
function storeSecret(module: Module, record: ApiKeyRecord, secret: string): void {
  delete record.token;
  delete record.secret_hash;
  if (module.getOptionBoolean("invites_api_plaintext_keys", false)) record.token = secret;
  else record.secret_hash = HASH_PREFIX + sha256(secret).toString("hex");
}

export async function createKey(module: Module, name: string | undefined, options: KeyOptions = {}): Promise<string> {
  const store = await openKeyStore(module);
  const keyId = id.short();
  const secret = id.long();
  const record: ApiKeyRecord = {
    id: keyId,
    created_at: now(),
    allowed_methods: { GET: true, POST: true },
  };
  storeSecret(module, record, secret);
  if (name !== undefined) record.name = name;
  // Only fields asked for: a key made without options is exactly Prosody's record.
  if (options.scopes !== undefined) record.scopes = options.scopes;
  if (options.expires !== undefined) record.expires = options.expires;
  if (options.rate !== undefined) record.rate = options.rate;
  await store.set(null, keyId, record as unknown as StoreRecord);
  return `${keyId}/${secret}`;
}

export async function getKey(store: MapStore, keyId: string): Promise<ApiKeyRecord | undefined> {
  const v = await store.get(null, keyId);
  return v && typeof v === "object" && !Array.isArray(v) ? (v as unknown as ApiKeyRecord) : undefined;
}

/**
 * A new secret for key `keyId` (same id, scopes, expiry): returns `<id>/<secret>`, or undefined for
 * no such key. The old secret is accepted `grace` more seconds (as its hash: a plaintext Prosody
 * token is not kept), then refused; rotating again ends the earlier grace at once.
 */
export async function rotateKey(module: Module, keyId: string, grace: number, at: number = now()): Promise<string | undefined> {
  const store = await openKeyStore(module);
  const record = await getKey(store, keyId);
  if (!record) return undefined;
  const old = typeof record.secret_hash === "string" ? record.secret_hash : typeof record.token === "string" ? HASH_PREFIX + sha256(record.token).toString("hex") : undefined;
  const secret = id.long();
  storeSecret(module, record, secret);
  delete record.previous_secret_hash;
  delete record.previous_expires;
  if (old !== undefined && grace > 0) {
    record.previous_secret_hash = old;
    record.previous_expires = at + grace;
  }
  record.rotated_at = at;
  await store.set(null, keyId, record as unknown as StoreRecord);
  return `${keyId}/${secret}`;
}

/** Whether `secret` is the key's previous one (before `rotate`), still within its grace at `at`. */
export function previousSecretMatches(record: ApiKeyRecord, secret: string, at: number): boolean {
  if (typeof record.previous_secret_hash !== "string" || typeof record.previous_expires !== "number" || at >= record.previous_expires) return false;
  return secretMatches({ id: record.id, created_at: record.created_at, secret_hash: record.previous_secret_hash }, secret);
}
