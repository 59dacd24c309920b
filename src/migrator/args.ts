/**
 * prosody-migrator's command line: `[--config FILE] [--keep-going] [-v|--verbose] [FROM_STORE TO_STORE]`
 * (plus prosodyctl's `--root`), options first as in Prosody's argument parser (it stops at the
 * first word that is not an option, or after `--`). Parsed with yargs-parser.
 */
import yargsParser from "yargs-parser";

export interface MigratorArgs {
  config?: string;
  keepGoing: boolean;
  verbose: boolean;
  help: boolean;
  root: boolean;
  positional: string[];
}

const SHORT: Record<string, string> = { v: "verbose", h: "help", "?": "help" };
const BOOLEANS = ["keep-going", "verbose", "help", "root"];

/** The options, or Prosody's message for an unknown option / a --config without its value. */
export function parseMigratorArgs(argv: readonly string[]): MigratorArgs | { error: string } {
  const options: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    const name = a.startsWith("--") ? a.slice(2).split("=")[0]! : SHORT[a.slice(1)];
    // Prosody takes any other --x as a flag it never reads; a mistyped --keepgoing or --conifg
    // would then go unnoticed, so we refuse it.
    if (name === undefined || !(name === "config" || BOOLEANS.includes(name.replace(/^no-/, "")))) {
      return { error: `Unknown command-line option: ${a.split("=")[0]}` };
    }
    options.push(a.length === 2 ? `--${name}` : a);
    if (name === "config" && !a.includes("=")) {
      if (i + 1 >= argv.length) return { error: `Expected a value to follow command-line option: ${a}` };
      options.push(argv[++i]!);
    }
  }
  const parsed = yargsParser(options, {
    string: ["config"],
    boolean: BOOLEANS,
    configuration: { "camel-case-expansion": false, "dot-notation": false, "parse-numbers": false, "short-option-groups": false },
  });
  const config = parsed.config as unknown;
  return {
    config: typeof config === "string" ? config : Array.isArray(config) ? String(config.at(-1)) : undefined,
    keepGoing: parsed["keep-going"] === true,
    verbose: parsed.verbose === true,
    help: parsed.help === true,
    root: parsed.root === true,
    positional: argv.slice(i),
  };
}

/** Prosody's usage text, naming the command as it was run. */
export function usageText(argv0: string): string {
  return (
    `Usage: ${argv0} [OPTIONS] FROM_STORE TO_STORE\n` +
    "  --config FILE         Specify config file\n" +
    "  --keep-going          Keep going in case of errors\n" +
    "  -v, --verbose         Increase log-level\n" +
    "\n" +
    "If no stores are specified, 'input' and 'output' are used.\n"
  );
}
