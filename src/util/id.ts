/**
 * Random identifiers as Prosody's util/id.lua makes them: base64url (no padding) of random bytes.
 * tiny 3 bytes → 4 chars, short 9 → 12, medium 18 → 24, long 27 → 36.
 */
import { randomFillSync, randomUUID } from "node:crypto";

// One getrandom() call per 4 KiB instead of one per id: ids are made on every API request.
const POOL = Buffer.alloc(4096);
let offset = POOL.length;

export function b64urlRandom(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes <= 0 || bytes > POOL.length) throw new RangeError(`b64urlRandom: bad length ${bytes}`);
  if (offset + bytes > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const out = POOL.toString("base64url", offset, offset + bytes);
  // Never hand out the same bytes twice.
  POOL.fill(0, offset, offset + bytes);
  offset += bytes;
  return out;
}

export const id = {
  tiny: () => b64urlRandom(3),
  short: () => b64urlRandom(9),
  medium: () => b64urlRandom(18),
  long: () => b64urlRandom(27),
  custom: (bytes: number) => () => b64urlRandom(bytes),
};

/** RFC 4122 version 4, lower-case (util/uuid.lua generate()). */
export function uuid(): string {
  return randomUUID();
}

/** Unix time in whole seconds (Lua's os.time()). */
export function now(): number {
  return Math.floor(Date.now() / 1000);
}
