/**
 * `prosodyctl --version`. Prosody 0.12.3's prosodyctl has no such option (it prints its help and
 * exits 0; `about` shows "Prosody 0.12.3"), so the line is ours: which program this is and which
 * Prosody it behaves like, since the two stand side by side on one machine.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../core/paths.js";

/** The Prosody release whose behaviour, files and messages this host matches. */
export const PROSODY_COMPAT_VERSION = "0.12.3";

function packageVersion(): string {
  try {
    const v = JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")).version;
    return typeof v === "string" ? v : "unknown";
  } catch {
    return "unknown";
  }
}

/** e.g. "prosody-ts 0.1.0 (Prosody 0.12.3-compatible plugin host; Node.js v20.19.0)". */
export function versionLine(): string {
  return `prosody-ts ${packageVersion()} (Prosody ${PROSODY_COMPAT_VERSION}-compatible plugin host; Node.js ${process.version})`;
}
