/**
 * Whether two evaluations of a config say the same thing: the running server compares the file
 * as it reads it now with the config it runs, to know whether a prosodyctl command may run on
 * its loaded hosts and modules (as the command would see them in a fresh process) or needs a
 * runtime of its own (the file was edited and not reloaded).
 */
import type { Config, ConfigSection } from "./types.js";

/** Same file, same files read, same sections and options, same warnings and default paths. */
export function sameConfig(a: Config, b: Config): boolean {
  if (a === b) return true;
  if (a.file !== b.file || !sameList(a.files, b.files) || !sameList(a.warnings, b.warnings)) return false;
  if (JSON.stringify(a.pathDefaults ?? null) !== JSON.stringify(b.pathDefaults ?? null)) return false;
  if (a.sections.size !== b.sections.size) return false;
  const bs = [...b.sections.values()];
  let i = 0;
  for (const s of a.sections.values()) if (!sameSection(s, bs[i++]!)) return false;
  return true;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function sameSection(a: ConfigSection, b: ConfigSection): boolean {
  return a.name === b.name && a.kind === b.kind && a.file === b.file && a.line === b.line && JSON.stringify(a.options) === JSON.stringify(b.options);
}
