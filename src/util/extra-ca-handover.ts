/**
 * NODE_EXTRA_CA_CERTS handed over by prosodyctl's executable, which has `env` start node without it
 * (why: util/extra-ca.ts). No imports: the executable's bundle runs this before anything else.
 */

/** The environment variable the executable's first line hands the value over in. */
export const HANDED_OVER_VAR = "PROSODY_TS_NODE_EXTRA_CA_CERTS";

export interface DeferredExtraCa {
  file: string;
  /** Built on first use (util/extra-ca.ts); null once the file could not be used. */
  context?: unknown;
}

// A global rather than a module variable: the executable's CommonJS bundle and the ES modules it
// imports each have their own copy of this file.
const KEY = Symbol.for("prosody-ts.deferredExtraCaCerts");
type Holder = { [KEY]?: DeferredExtraCa };

/**
 * Takes the handed-over value out of the environment and, when node was started without
 * NODE_EXTRA_CA_CERTS, records it for this process and puts the variable back, so the processes
 * this one starts (the server on `restart`, Lua, openssl) get it as usual.
 */
export function handOverExtraCaCerts(env: NodeJS.ProcessEnv = process.env): void {
  const file = env[HANDED_OVER_VAR];
  if (file === undefined) return;
  delete env[HANDED_OVER_VAR];
  if (file === "" || env.NODE_EXTRA_CA_CERTS !== undefined) return; // unset, or node loaded it itself
  (globalThis as Holder)[KEY] = { file };
  env.NODE_EXTRA_CA_CERTS = file;
}

/** The NODE_EXTRA_CA_CERTS node did not load itself, or undefined. */
export function deferredExtraCa(): DeferredExtraCa | undefined {
  return (globalThis as Holder)[KEY];
}
