/**
 * prosodyctl's global options: only those before the command word count (Prosody stops at the
 * first argument not starting with "-", or after "--"). Parsed with yargs.
 */
// yargs' own parser: the full yargs costs ~100 ms to import, too much for every prosodyctl call.
import yargsParser from "yargs-parser";

export interface GlobalOptions {
  config?: string;
  verbose: boolean;
  quiet: boolean;
  silent: boolean;
  help: boolean;
  root: boolean;
  /** --embedded-config: run on the embedded default config without searching for a file. */
  embeddedConfig: boolean;
  version: boolean;
}

export type ParsedArgs =
  | { ok: true; options: GlobalOptions; command?: string; args: string[] }
  | { ok: false; error: string };

const KNOWN_SHORT = new Set(["v", "h", "?"]);
const BOOLEANS = ["verbose", "quiet", "silent", "help", "root", "embedded-config", "version"];
const KNOWN_LONG = new Set(["config", ...BOOLEANS, ...BOOLEANS.map((b) => `no-${b}`)]);

export function parseArgs(argv: string[]): ParsedArgs {
  const leading: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    leading.push(a);
    // "--config FILE": the value is part of the options, not the command word.
    if (a === "--config") {
      if (i + 1 >= argv.length) return { ok: false, error: "Option --config requires a file name" };
      leading.push(argv[++i]!);
    }
    // Prosody takes any other --x as a boolean it never reads; a mistyped --conifg would then
    // quietly use another config, so we refuse it.
    if (a.startsWith("--") && !KNOWN_LONG.has(a.slice(2).split("=")[0]!)) {
      return { ok: false, error: `Unknown command-line option: ${a.split("=")[0]}` };
    }
    if (/^-[^-]/.test(a)) {
      for (const ch of a.slice(1)) {
        if (!KNOWN_SHORT.has(ch)) return { ok: false, error: `Unknown command-line option: -${ch}` };
      }
    }
  }
  const parsed = yargsParser(leading, {
    string: ["config"],
    boolean: BOOLEANS,
    alias: { verbose: ["v"], help: ["h", "?"] },
    configuration: { "camel-case-expansion": false, "dot-notation": false, "parse-numbers": false },
  });
  const rest = argv.slice(i);
  const config = parsed.config;
  return {
    ok: true,
    options: {
      config: typeof config === "string" ? config : Array.isArray(config) ? String(config.at(-1)) : undefined,
      verbose: parsed.verbose === true,
      quiet: parsed.quiet === true,
      silent: parsed.silent === true,
      help: parsed.help === true,
      root: parsed.root === true,
      embeddedConfig: parsed["embedded-config"] === true,
      version: parsed.version === true,
    },
    command: rest[0],
    args: rest.slice(1),
  };
}
