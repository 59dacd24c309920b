/** Shared helpers for the config tests. */
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { ConfigError } from "../../src/core/config/index.js";

export const FIXTURES = fileURLToPath(new URL("../fixtures/config/", import.meta.url));

export function fixture(...parts: string[]): string {
  return join(FIXTURES, ...parts);
}

/**
 * Awaits a rejected load and checks it is a one-line ConfigError: `expected` is the exact
 * message (string) or a pattern. Returns the error for further checks.
 */
export async function rejects(promise: Promise<unknown>, expected: string | RegExp): Promise<ConfigError> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
  const { message } = error as ConfigError;
  assert.not.match(message, /\n/, "message is one line");
  assert.not.match(message, /\[string |<cfg:|<file:|\n\s+at /, "no VM decorations or JS stack");
  if (typeof expected === "string") assert.is(message, expected);
  else assert.match(message, expected);
  return error as ConfigError;
}
