/**
 * The prosodyctl shim: `prosodyctl [OPTIONS] COMMAND [ARGS]`, with Prosody's dispatch rules,
 * messages and exit codes (spec §4): `mod_<name> args…` runs a plugin's command on the global
 * pseudo-host "*"; `start` runs the server in the foreground; anything else prints the help
 * listing and exits 0.
 */
import { ConfigError, findAndLoadConfig, type Config } from "../core/config/index.js";
import { consoleText, createLogger, setLogLevel, withLogCapture } from "../core/logger.js";
import { ModuleLoadError } from "../core/modulemanager.js";
import { createRuntime } from "../create-runtime.js";
import type { CommandContext, LogLevel } from "../core/types.js";
import { aboutText } from "./about.js";
import { helpText } from "./help.js";
import { runStart } from "./start.js";
import { versionLine } from "./version.js";
import { parseArgs, type GlobalOptions, type ParsedArgs } from "./options.js";
import { isUserCommand, runUserCommand } from "./users.js";
import { isRoot, planPrivileges, switchUser, trustPolicyFor } from "./privileges.js";
import { checkConfigTrust } from "./trust.js";
import type { TrustPolicy } from "../core/trusted-paths.js";
import { openSqlStorage } from "./sql-storage.js";
import { runStorageCommand } from "./storage.js";
import { runCheckCommand } from "./check.js";
import type { CliIO } from "./io.js";
import { isDaemonCommand, runDaemonCommand } from "./daemon.js";
import { runInServer } from "./admin-client.js";
import { ADMIN_SOCKET_OPTION, adminSocketPath, type Runner } from "./admin-socket.js";
import { runShell } from "./shell.js";
import type { Runtime } from "../core/runtime.js";

export type { CliIO } from "./io.js";

/** As Prosody's shell: COLUMNS, else the terminal's width, else none. */
function terminalWidth(): number | undefined {
  const cols = Number(process.env.COLUMNS);
  if (Number.isInteger(cols) && cols > 0) return cols;
  return process.stdout.isTTY ? process.stdout.columns : undefined;
}

const defaultIO = (): CliIO => ({
  width: terminalWidth(),
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
  argv0: "prosodyctl",
  dropPrivileges: false,
});

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Loaded {
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
async function loadConfig(options: GlobalOptions, io: CliIO): Promise<Loaded | number> {
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

type Load = () => Promise<Loaded | number>;

/** The log level a command runs at. */
function levelOf(options: GlobalOptions, command: string | undefined): LogLevel | "silent" {
  return options.silent ? "silent" : options.quiet ? "error" : options.verbose ? "debug" : command === "start" ? "info" : "warn";
}

/** Commands prosodyctl runs inside the server serving its config when there is one. */
function runsInServer(command: string): boolean {
  return isUserCommand(command) || command.startsWith("mod_") || command === "shell";
}

/** Runs one prosodyctl invocation; resolves to the process exit code. */
export async function main(argv: string[], ioOverrides: Partial<CliIO> = {}): Promise<number> {
  const io = { ...defaultIO(), ...ioOverrides };
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    io.stdout(`${parsed.error}\n`);
    return 1;
  }
  const { options, command } = parsed;
  setLogLevel(levelOf(options, command));
  let loading: Promise<Loaded | number> | undefined;
  const load = () => (loading ??= loadConfig(options, io));
  if (command && runsInServer(command) && !options.help && !options.version) {
    const loaded = await load();
    if (typeof loaded === "number") return loaded;
    const code = await runInServer(argv, loaded.config, io);
    if (code !== undefined) return code;
  }
  return dispatch(parsed, argv, io, load);
}

/**
 * What the server runs for a prosodyctl connected to its admin socket: the same dispatch on the
 * config file the server was started with (read again, as prosodyctl would), with the trust
 * policy of the server's start; log records go to that prosodyctl's stderr.
 */
export function serveCommands(server: { trust?: TrustPolicy; runtime: Runtime }): Runner {
  return async (req, client) => {
    const io: CliIO = { ...client, env: {}, cwd: req.cwd, argv0: req.argv0, command: req.command, width: req.width, dropPrivileges: false };
    const parsed = parseArgs(req.argv);
    if (!parsed.ok || !parsed.command || !runsInServer(parsed.command)) {
      io.stderr("prosodyctl: the server runs only account and module commands for prosodyctl\n");
      return 1;
    }
    const load: Load = async () => {
      try {
        const config = await findAndLoadConfig({ explicit: req.config ?? undefined, embedded: req.config === null, env: {}, cwd: io.cwd });
        return { config, trust: server.trust };
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        io.stdout(`${err.message}\n`);
        return 1;
      }
    };
    return withLogCapture((r) => io.stderr(consoleText(r)), levelOf(parsed.options, parsed.command), () => dispatch(parsed, req.argv, io, load, server.runtime));
  };
}

/** `server`: the running server's runtime, when the server runs this for a prosodyctl. */
async function dispatch(parsed: ParsedArgs & { ok: true }, argv: string[], io: CliIO, load: Load, server?: Runtime): Promise<number> {
  const { options, command, args } = parsed;

  if (options.version) {
    io.stdout(`${versionLine()}\n`);
    return 0;
  }

  if (!command || options.help) {
    io.stdout(helpText(io.argv0));
    return 0;
  }

  if (command === "start") return runStart(args, options, io, load, argv, (loaded, runtime) => serveCommands({ trust: loaded.trust, runtime }));

  if (command === "about") {
    const loaded = await load();
    if (typeof loaded === "number") return loaded;
    const { config } = loaded;
    const rt = createRuntime({ config, processType: "prosodyctl", cwd: io.cwd, trust: loaded.trust });
    io.stdout(aboutText(config, rt));
    return 0;
  }

  if (isDaemonCommand(command)) {
    return runDaemonCommand(command, args, { io, root: options.root, loadConfig: load });
  }

  if (isUserCommand(command)) {
    return runUserCommand(command, args, { io, loadConfig: load });
  }

  if (command === "check") return runCheckCommand(args, io, load);

  if (command === "storage") return runStorageCommand(args, io, load);

  if (command === "shell") {
    if (server) return runShell(args, io, server);
    const loaded = await load();
    if (typeof loaded === "number") return loaded;
    const path = adminSocketPath(loaded.config, io.cwd);
    io.stdout("** Unable to connect to server - is it running?\n");
    io.stdout(path ? `** Connection error: no prosody-ts server answers on ${path}\n` : `** The admin socket is turned off (${ADMIN_SOCKET_OPTION} = false)\n`);
    return 1;
  }

  if (command.startsWith("mod_")) return runModuleCommand(command.slice(4), args, io, load);

  io.stdout(helpText(io.argv0));
  return 0;
}

async function runModuleCommand(name: string, args: string[], io: CliIO, load: Load): Promise<number> {
  const loaded = await load();
  if (typeof loaded === "number") return loaded;
  const { config } = loaded;
  const log = createLogger("prosodyctl");
  for (const w of config.warnings) log("warn", "Configuration warning: %s", w);
  const runtime = createRuntime({ config, processType: "prosodyctl", cwd: io.cwd, trust: loaded.trust });
  try {
    const refused = await openSqlStorage(runtime, config);
    if (refused) {
      io.stdout(`${refused}\n`); // where prosodyctl prints a command's failures
      return 1;
    }
    let mod;
    try {
      mod = await runtime.modules.forCommand(name);
    } catch (err) {
      const msg = err instanceof ModuleLoadError && err.code === "module-not-found" ? "module not found" : errorText(err);
      io.stdout(`Failed to load module '${name}': ${msg}\n`);
      return 1;
    }
    if (typeof mod.command !== "function") {
      io.stdout(`Fail: mod_${name} does not support any commands\n`);
      return 1;
    }
    const ctx: CommandContext = {
      module: mod,
      print: (...text) => io.stdout(`${text.map((t) => (t === undefined || t === null ? "nil" : String(t))).join("\t")}\n`),
    };
    let result: unknown;
    try {
      result = await mod.command(args, ctx);
    } catch (err) {
      io.stdout(`Failed to execute command: Error: ${errorText(err)}\n`);
      return 1;
    }
    if (typeof result === "number") return Number.isInteger(result) && result >= 0 && result <= 255 ? result : 1;
    if (typeof result === "string") io.stdout(`${result}\n`);
    return 0;
  } finally {
    // Flush every store the command wrote to before the process exits.
    await runtime.stop().catch((err) => log("error", "Error while closing: %s", errorText(err)));
  }
}
