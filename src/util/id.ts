/**
 * Random identifiers as Prosody's util/id.lua makes them: base64url (no padding) of random bytes.
 * tiny 3 bytes → 4 chars, short 9 → 12, medium 18 → 24, long 27 → 36.
 */
import { randomBytes, randomUUID } from "node:crypto";

export function b64urlRandom(bytes: number): string {
  return randomBytes(bytes).toString("base64url");
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
