/**
 * The first steps of a prosodyctl run, kept small so that a command the running server runs
 * (adduser/passwd/deluser, mod_*, shell) costs little more than node's own start: the terminal,
 * the log level, the config (found, loaded, vetted and the user switched when started as root)
 * and, through the admin socket (admin-client.ts), the server. `about` needs only the config and
 * is answered here too. The executable (bin.ts) loads the rest of prosodyctl only when the
 * command runs there after all.
 */
import { isatty } from "node:tty";
import { ConfigError, findAndLoadConfig, type Config } from "../core/config/index.js";
import { createLogger, setLogLevel } from "../core/logger.js";
import type { TrustPolicy } from "../core/trusted-paths.js";
import type { LogLevel } from "../core/types.js";
import { aboutText } from "./about.js";
import { runInServer } from "./admin-client.js";
import type { CliIO } from "./io.js";
import type { GlobalOptions, ParsedArgs } from "./options.js";
import { isRoot, planPrivileges, switchUser, trustPolicyFor } from "./privileges.js";
import { checkConfigTrust } from "./trust.js";

/** As Prosody's shell: COLUMNS, else the terminal's width, else none. */
function terminalWidth(): number | undefined {
  const cols = Number(process.env.COLUMNS);
  if (Number.isInteger(cols) && cols > 0) return cols;
  // isatty first: process.stdout is a stream made on first use (~0.5 ms), needed only for a terminal.
  return isatty(1) ? process.stdout.columns : undefined;
}

export const defaultIO = (): CliIO => ({
  width: terminalWidth(),
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
  argv0: "prosodyctl",
  dropPrivileges: false,
});

export interface Loaded {
  config: Config;
  /** Set when the process started as root: what plugin files may be loaded from. */
  trust?: TrustPolicy;
  /** Started as root: refuses a reloaded config as the start refused this one (src/cli/trust.ts). */
  vet?: (config: Config) => string | undefined;
  /** Switched from root to prosody_user. */
  switched?: boolean;
}

/**
 * Finds and loads the config; in the executable, started as root, checks that the config and
 * plugin folders are safe to use (src/cli/trust.ts) and switches to prosody_user
 * (src/cli/privileges.ts). A number is the exit code, after the reason was printed.
 */
export async function loadConfig(options: GlobalOptions, io: CliIO): Promise<Loaded | number> {
  const root = options.root;
  let config: Config;
  try {
    config = await findAndLoadConfig({ explicit: options.config, embedded: options.embeddedConfig, env: io.env, cwd: io.cwd });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.stdout(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  if (!io.dropPrivileges || !isRoot()) return { config };
  const plan = planPrivileges(config, { root });
  if ("error" in plan) {
    io.stdout(`${plan.error}\n`);
    return 1;
  }
  const trust = trustPolicyFor(plan);
  const refused = checkConfigTrust(config, io.cwd, trust, { stayingRoot: plan.stay });
  if (refused) {
    io.stdout(`${refused}\n`);
    return 1;
  }
  const log = createLogger("prosodyctl");
  if (plan.stay) {
    log("debug", "Not switching user: %s", plan.reason);
  } else {
    const failed = switchUser(plan, config);
    if (failed) {
      io.stdout(`${failed}\n`);
      return 1;
    }
    log("debug", "Switched to user %s, group %s", plan.user, plan.group);
  }
  const vet = (next: Config) => checkConfigTrust(next, io.cwd, trust, { stayingRoot: plan.stay });
  return { config, trust, vet, switched: !plan.stay };
}

export type Load = () => Promise<Loaded | number>;

/** The log level a command runs at. */
export function levelOf(options: GlobalOptions, command: string | undefined): LogLevel | "silent" {
  return options.silent ? "silent" : options.quiet ? "error" : options.verbose ? "debug" : command === "start" ? "info" : "warn";
}

/** Commands prosodyctl runs inside the server serving its config when there is one. */
export function runsInServer(command: string): boolean {
  return command === "adduser" || command === "passwd" || command === "deluser" || command.startsWith("mod_") || command === "shell";
}

/** A command line prosodyctl first sends to the server. */
export function tryServerFirst(parsed: ParsedArgs & { ok: true }): boolean {
  return parsed.command !== undefined && runsInServer(parsed.command) && !parsed.options.help && !parsed.options.version;
}

/**
 * For the executable: sets the log level, loads the config and sends the command to the server
 * serving it. A number is the exit code (the server ran it, or the config could not be used);
 * otherwise the command is to run here, on the config returned.
 */
export async function runInServerFirst(argv: string[], parsed: ParsedArgs & { ok: true }, ioOverrides: Partial<CliIO>): Promise<number | Loaded> {
  const io = { ...defaultIO(), ...ioOverrides };
  setLogLevel(levelOf(parsed.options, parsed.command));
  const loaded = await loadConfig(parsed.options, io);
  if (typeof loaded === "number") return loaded;
  return (await runInServer(argv, loaded.config, io)) ?? loaded;
}

/**
 * For the executable: what runs before the rest of prosodyctl is loaded. A number is the exit
 * code (`about` was answered, the server ran the command, or the config could not be used); a
 * Loaded config is for the command to run here on; undefined: nothing was done.
 */
export async function runFirst(argv: string[], parsed: ParsedArgs & { ok: true }, ioOverrides: Partial<CliIO>): Promise<number | Loaded | undefined> {
  if (parsed.command === "about" && !parsed.options.help && !parsed.options.version) {
    const io = { ...defaultIO(), ...ioOverrides };
    setLogLevel(levelOf(parsed.options, parsed.command));
    const loaded = await loadConfig(parsed.options, io);
    if (typeof loaded === "number") return loaded;
    io.stdout(aboutText(loaded.config, io.cwd));
    return 0;
  }
  return tryServerFirst(parsed) ? runInServerFirst(argv, parsed, ioOverrides) : undefined;
}
