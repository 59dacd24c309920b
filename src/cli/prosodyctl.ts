/**
 * The prosodyctl shim: `prosodyctl [OPTIONS] COMMAND [ARGS]`, with Prosody's dispatch rules,
 * messages and exit codes (spec §4): `mod_<name> args…` runs a plugin's command on the global
 * pseudo-host "*"; `start` runs the server in the foreground; anything else prints the help
 * listing and exits 0.
 */
import { ConfigError, findAndLoadConfig, sameConfig, type Config } from "../core/config/index.js";
import { consoleText, setLogLevel, withLogCapture } from "../core/logger.js";
import { aboutText } from "./about.js";
import { helpText } from "./help.js";
import { runStart } from "./start.js";
import { versionLine } from "./version.js";
import { parseArgs, type ParsedArgs } from "./options.js";
import { isUserCommand, runUserCommand } from "./users.js";
import type { TrustPolicy } from "../core/trusted-paths.js";
import { runModuleCommand, type SharedStorage } from "./module-command.js";
import { runStorageCommand } from "./storage.js";
import { runCheckCommand } from "./check.js";
import type { CliIO } from "./io.js";
import { defaultIO, levelOf, loadConfig, runsInServer, tryServerFirst, type Load, type Loaded } from "./startup.js";
import { isDaemonCommand, runDaemonCommand } from "./daemon.js";
import { runInServer } from "./admin-client.js";
import { ADMIN_SOCKET_OPTION, adminSocketPath, type Runner } from "./admin-socket.js";
import { runShell } from "./shell.js";
import type { Runtime } from "../core/runtime.js";
import { trustDeferredExtraCaInHttps } from "../util/extra-ca.js";

export type { CliIO } from "./io.js";

/** Runs one prosodyctl invocation; resolves to the process exit code. */
/**
 * `preloaded`: the executable already loaded the config and asked the server (src/cli/startup.ts,
 * which found none to run it): the command runs here on that config.
 */
export async function main(argv: string[], ioOverrides: Partial<CliIO> = {}, preloaded?: Loaded): Promise<number> {
  const io = { ...defaultIO(), ...ioOverrides };
  // A NODE_EXTRA_CA_CERTS node did not load (src/util/extra-ca.ts) is trusted by https requests here.
  trustDeferredExtraCaInHttps();
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    io.stdout(`${parsed.error}\n`);
    return 1;
  }
  const { options, command } = parsed;
  setLogLevel(levelOf(options, command));
  let loading: Promise<Loaded | number> | undefined = preloaded && Promise.resolve(preloaded);
  const load = () => (loading ??= loadConfig(options, io));
  if (!preloaded && tryServerFirst(parsed)) {
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
 * policy of the server's start; log records go to that prosodyctl's stderr. When the file still
 * says what the running server was loaded with, module and account commands use the server's
 * storage (drivers loaded, databases open); otherwise (edited since, not reloaded) they open their own.
 */
export function serveCommands(server: { trust?: TrustPolicy; runtime: Runtime; config?: Config }): Runner {
  const started = server.config ?? server.runtime.config;
  const shared: SharedStorage = (config) =>
    sameConfig(config, server.runtime.config) && sameStorage(config, started) ? server.runtime.storage : undefined;
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
    return withLogCapture((r) => io.stderr(consoleText(r)), levelOf(parsed.options, parsed.command), () =>
      dispatch(parsed, req.argv, io, load, { runtime: server.runtime, shared }),
    );
  };
}

/**
 * Options a reload swaps in without reopening what they name (stores, the data directory): the
 * loaded runtime serves a command only while these are still those the server started with.
 */
const STORAGE_OPTIONS = ["storage", "default_storage", "sql", "data_path", "authentication"];
function sameStorage(a: Config, b: Config): boolean {
  const hosts = new Set(["*", ...a.hosts(), ...b.hosts()]);
  for (const host of hosts)
    for (const name of STORAGE_OPTIONS) if (JSON.stringify(a.get(host, name) ?? null) !== JSON.stringify(b.get(host, name) ?? null)) return false;
  return true;
}

/** `server`: the running server's runtime, when the server runs this for a prosodyctl. */
async function dispatch(
  parsed: ParsedArgs & { ok: true }, argv: string[], io: CliIO, load: Load, server?: { runtime: Runtime; shared: SharedStorage },
): Promise<number> {
  const { options, command, args } = parsed;

  if (options.version) {
    io.stdout(`${versionLine()}\n`);
    return 0;
  }

  if (!command || options.help) {
    io.stdout(helpText(io.argv0));
    return 0;
  }

  if (command === "start") return runStart(args, options, io, load, argv, (loaded, runtime) => serveCommands({ trust: loaded.trust, runtime, config: loaded.config }));

  if (command === "about") {
    const loaded = await load();
    if (typeof loaded === "number") return loaded;
    io.stdout(aboutText(loaded.config, io.cwd));
    return 0;
  }

  if (isDaemonCommand(command)) {
    return runDaemonCommand(command, args, { io, root: options.root, loadConfig: load });
  }

  if (isUserCommand(command)) {
    return runUserCommand(command, args, { io, loadConfig: load, shared: server?.shared });
  }

  if (command === "check") return runCheckCommand(args, io, load);

  if (command === "storage") return runStorageCommand(args, io, load);

  if (command === "shell") {
    if (server) return runShell(args, io, server.runtime);
    const loaded = await load();
    if (typeof loaded === "number") return loaded;
    const path = adminSocketPath(loaded.config, io.cwd);
    io.stdout("** Unable to connect to server - is it running?\n");
    io.stdout(path ? `** Connection error: no prosody-ts server answers on ${path}\n` : `** The admin socket is turned off (${ADMIN_SOCKET_OPTION} = false)\n`);
    return 1;
  }

  if (command.startsWith("mod_")) return runModuleCommand(command.slice(4), args, io, load, server?.shared);

  io.stdout(helpText(io.argv0));
  return 0;
}
