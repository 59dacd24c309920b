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

export async function createKey(module: Module, name: string | undefined): Promise<string> {
  const store = await openKeyStore(module);
  const keyId = id.short();
  const secret = id.long();
  const plaintext = module.getOptionBoolean("invites_api_plaintext_keys", false);
  const record: ApiKeyRecord = {
    id: keyId,
    created_at: now(),
    allowed_methods: { GET: true, POST: true },
  };
  if (plaintext) record.token = secret;
  else record.secret_hash = HASH_PREFIX + sha256(secret).toString("hex");
  if (name !== undefined) record.name = name;
  await store.set(null, keyId, record as unknown as StoreRecord);
  return `${keyId}/${secret}`;
}

export async function getKey(store: MapStore, keyId: string): Promise<ApiKeyRecord | undefined> {
  const v = await store.get(null, keyId);
  return v && typeof v === "object" && !Array.isArray(v) ? (v as unknown as ApiKeyRecord) : undefined;
}
