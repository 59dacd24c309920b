/**
 * SCRAM credentials as Prosody's mod_auth_internal_hashed stores them (RFC 5802, spec §6.3):
 * P = SASLprep(password); SaltedPassword = PBKDF2-HMAC-H(P, salt, i); StoredKey =
 * H(HMAC(SaltedPassword, "Client Key")); ServerKey = HMAC(SaltedPassword, "Server Key"); both
 * kept as lower-case hex. The salt is a fresh UUID string whose bytes are used as they are.
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";
import { uuid } from "./id.js";
import { saslprep } from "./stringprep.js";

/** `password_hash = "SHA-1"` (Prosody's default) or `"SHA-256"`. */
export type ScramHash = "sha1" | "sha256";

/** Prosody's account record (keyval store `accounts`), field names exactly as stored. */
export interface ScramRecord {
  salt: string;
  stored_key: string;
  server_key: string;
  iteration_count: number;
}

export interface ScramKeys {
  saltedPassword: Buffer;
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface ScramOptions {
  /** Salt string (its UTF-8 bytes are the salt); default a fresh UUID, as Prosody does. */
  salt?: string;
  /** Default 10000 (Prosody's default_iteration_count). */
  iterations?: number;
  hash?: ScramHash;
}

export const DEFAULT_ITERATIONS = 10000;

const pbkdf2Async = promisify(pbkdf2);
const KEY_LENGTH: Record<ScramHash, number> = { sha1: 20, sha256: 32 };

/** SASLprep exactly as Prosody's SCRAM code calls it (non-strict); undefined if refused. */
export { saslprep };

/** Maps Prosody's `password_hash` option value ("SHA-1", "SHA-256") to a hash, or undefined. */
export function scramHashFromOption(name: string): ScramHash | undefined {
  const n = name.toUpperCase().replace(/_/g, "-");
  return n === "SHA-1" || n === "SHA1" ? "sha1" : n === "SHA-256" || n === "SHA256" ? "sha256" : undefined;
}

function derive(saltedPassword: Buffer, hash: ScramHash): ScramKeys {
  const clientKey = createHmac(hash, saltedPassword).update("Client Key").digest();
  return {
    saltedPassword,
    clientKey,
    storedKey: createHash(hash).update(clientKey).digest(),
    serverKey: createHmac(hash, saltedPassword).update("Server Key").digest(),
  };
}

function prepOrThrow(password: string): Buffer {
  const p = saslprep(password);
  if (p === undefined) throw new ScramError("password fails SASLprep");
  return Buffer.from(p, "utf8");
}

function checkIterations(iterations: number): number {
  if (!Number.isInteger(iterations) || iterations < 1) throw new ScramError("iteration count must be a positive integer");
  return iterations;
}

const saltBytes = (salt: string | Uint8Array) => (typeof salt === "string" ? Buffer.from(salt, "utf8") : Buffer.from(salt));

/** Every intermediate value (synchronous; for tests and tools). Throws ScramError if SASLprep fails. */
export function scramKeys(password: string, salt: string | Uint8Array, iterations: number, hash: ScramHash = "sha1"): ScramKeys {
  const salted = pbkdf2Sync(prepOrThrow(password), saltBytes(salt), checkIterations(iterations), KEY_LENGTH[hash], hash);
  return derive(salted, hash);
}

async function scramKeysAsync(password: string, salt: string, iterations: number, hash: ScramHash): Promise<ScramKeys> {
  const salted = await pbkdf2Async(prepOrThrow(password), saltBytes(salt), checkIterations(iterations), KEY_LENGTH[hash], hash);
  return derive(salted, hash);
}

/** A new account record for `password`. Rejects with ScramError if the password fails SASLprep. */
export async function scramRecord(password: string, opts: ScramOptions = {}): Promise<ScramRecord> {
  const salt = opts.salt ?? uuid();
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS;
  const keys = await scramKeysAsync(password, salt, iterations, opts.hash ?? "sha1");
  return {
    salt,
    stored_key: keys.storedKey.toString("hex"),
    server_key: keys.serverKey.toString("hex"),
    iteration_count: iterations,
  };
}

/** SCRAM-SHA-1 record (Prosody's default `password_hash`). */
export function scramSha1Record(password: string, opts: Omit<ScramOptions, "hash"> = {}): Promise<ScramRecord> {
  return scramRecord(password, { ...opts, hash: "sha1" });
}

/** Whether `record` is a complete SCRAM record (hex keys of the hash's length, a salt, a count). */
export function isScramRecord(record: unknown, hash: ScramHash = "sha1"): record is ScramRecord {
  if (!record || typeof record !== "object") return false;
  const r = record as Record<string, unknown>;
  const hex = new RegExp(`^[0-9a-fA-F]{${KEY_LENGTH[hash] * 2}}$`);
  return (
    typeof r.salt === "string" &&
    typeof r.stored_key === "string" &&
    hex.test(r.stored_key) &&
    typeof r.server_key === "string" &&
    hex.test(r.server_key) &&
    typeof r.iteration_count === "number" &&
    Number.isInteger(r.iteration_count) &&
    r.iteration_count > 0
  );
}

/**
 * Checks `password` against an account record: a SCRAM record, or Prosody's legacy plaintext
 * `{ password = "…" }` (compared after SASLprep). False for anything else, never throws.
 */
export async function verifyScramPassword(record: unknown, password: string, hash: ScramHash = "sha1"): Promise<boolean> {
  if (typeof password !== "string") return false;
  const prepped = saslprep(password);
  if (prepped === undefined || !record || typeof record !== "object") return false;
  const plain = (record as Record<string, unknown>).password;
  if (typeof plain === "string" && plain !== "") {
    return sameBytes(Buffer.from(prepped, "utf8"), Buffer.from(plain, "utf8")) ||
      sameBytes(Buffer.from(prepped, "utf8"), Buffer.from(saslprep(plain) ?? "\u0000", "utf8"));
  }
  if (!isScramRecord(record, hash)) return false;
  let keys: ScramKeys;
  try {
    keys = await scramKeysAsync(password, record.salt, record.iteration_count, hash);
  } catch {
    return false;
  }
  const storedOk = sameBytes(keys.storedKey, Buffer.from(record.stored_key, "hex"));
  const serverOk = sameBytes(keys.serverKey, Buffer.from(record.server_key, "hex"));
  return storedOk && serverOk;
}

export class ScramError extends Error {
  override name = "ScramError";
}

// --- Internal helpers ---

/** Constant-time for equal lengths; hashing first makes the lengths equal. */
function sameBytes(a: Buffer, b: Buffer): boolean {
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}
