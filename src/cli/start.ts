/**
 * `prosodyctl start`: the server in the foreground, as a daemon supervisor expects it. Whatever
 * keeps it from doing its job — stray arguments, a port it cannot bind (a StartupError from the
 * listener), a config that enables nothing it serves — is one line on stderr and exit 1, never a
 * quiet exit 0. Once it serves, stdout says where to go next.
 */
import type { Config } from "../core/config/index.js";
import type { Runtime } from "../core/runtime.js";
import { createLogger } from "../core/logger.js";
import { findStartupError } from "../core/startup-error.js";
import type { TrustPolicy } from "../core/trusted-paths.js";
import { startServer, stopServer, waitForStopSignal } from "../server.js";
import { catchReloadSignal } from "../server-reload.js";
import { claimServerPidfile } from "./pidfile.js";
import type { CliIO } from "./io.js";
import type { GlobalOptions } from "./options.js";
import { startServerLogging } from "./server-logging.js";
import { openAdminSocket, type Runner } from "./admin-socket.js";

type Loaded = { config: Config; trust?: TrustPolicy; vet?: (config: Config) => string | undefined };
type LoadConfig = () => Promise<Loaded | number>;

/** What to enable when nothing is served: the plugins that answer HTTP. */
export const NOTHING_SERVED =
  "Nothing to serve: no module enabled on any host offers an HTTP page or API " +
  "(enable invites with invites_page, invites_register_web, register_apps or invites_api in modules_enabled; " +
  "XMPP modules stay with Prosody)";

/** `argv`: the whole command line, for the process title (how status/stop recognise our server). */
/** `serve`: what runs prosodyctl's commands that come through the admin socket (none without it). */
export async function runStart(
  args: string[],
  options: GlobalOptions,
  io: CliIO,
  loadConfig: LoadConfig,
  argv: readonly string[] = [],
  serve?: (loaded: Loaded, runtime: Runtime) => Runner,
): Promise<number> {
  const usage = `Usage: ${io.argv0} [--config FILE | --embedded-config] start`;
  if (args.includes("--help") || args.includes("-h")) {
    io.stdout(`${usage}\n\nStart the server in the foreground; SIGINT/SIGTERM stop it cleanly.\n`);
    return 0;
  }
  if (args.length > 0) {
    const first = args[0]!;
    io.stderr(
      first.startsWith("-")
        ? `start: unknown option ${first} (options go before the command)\n${usage}\n`
        : `start: unexpected argument '${first}'\n${usage}\n`,
    );
    return 1;
  }
  // Listen for signals before anything starts, so one arriving mid-start still stops cleanly
  // (and a SIGHUP, as from logrotate, reloads once started instead of killing the process).
  const stopRequested = waitForStopSignal();
  const reloads = catchReloadSignal();
  const loaded = await loadConfig();
  if (typeof loaded === "number") return loaded;
  const logging = startServerLogging(loaded.config, options, io);
  if (typeof logging === "number") return logging;
  const pidfile = claimServerPidfile(loaded.config, io.cwd, argv);
  if (typeof pidfile === "number") {
    await logging.close();
    return pidfile;
  }
  let runtime: Runtime;
  try {
    runtime = await startServer(loaded.config, { cwd: io.cwd, trust: loaded.trust });
  } catch (err) {
    pidfile?.release();
    await logging.close();
    // A StartupError may come wrapped in module load errors: print its own line only.
    const reason = findStartupError(err) ?? err;
    io.stderr(`Failed to start: ${reason instanceof Error ? reason.message : String(reason)}\n`);
    return 1;
  }
  logging.attach(runtime.globalEvents);
  // A promise a module forgot to handle (a timer's async work, a fire-and-forget write) would
  // end the process under Node's default; Prosody logs a module's error and goes on, and so do we.
  const stray = strayRejectionLogger();
  process.on("unhandledRejection", stray);
  reloads.attach(runtime, { env: io.env, vet: loaded.vet });
  // mod_http loaded on its own (listening, answering 404) is what the config asked for; nothing
  // at all to serve is a config written for Prosody alone (Debian's stock one).
  if (runtime.modules.servedItemCount() === 0 && !runtime.modules.isLoaded("*", "http")) {
    io.stderr(`Failed to start: ${NOTHING_SERVED}\n`);
    await reloads.detach();
    await stopServer(runtime);
    process.off("unhandledRejection", stray);
    pidfile?.release();
    await logging.close();
    return 1;
  }
  const admin = serve && (await openAdminSocket(loaded.config, io.cwd, serve(loaded, runtime)));
  // --quiet/--silent (a service manager's unit) want no chatter.
  if (!options.quiet && !options.silent) io.stdout(nextSteps(runtime, options, io.command ?? io.argv0));
  await stopRequested;
  await admin?.close();
  await reloads.detach();
  await stopServer(runtime);
  process.off("unhandledRejection", stray);
  pidfile?.release();
  await logging.close();
  return 0;
}

/** Logs an unhandled rejection (with its stack, for the module's author) instead of exiting. */
function strayRejectionLogger(): (reason: unknown) => void {
  const log = createLogger("general");
  return (reason) => {
    const detail = reason instanceof Error ? (reason.stack ?? reason.message) : String(reason);
    log("error", "Unhandled promise rejection (a bug in a module; the server goes on): %s", detail);
  };
}

// --- internal ---

/**
 * Where to go next, for the first host serving invites over the API: its URL, the command that
 * makes a key and a curl line using it. Other configs get the URL of what they serve.
 */
function nextSteps(runtime: Runtime, options: GlobalOptions, command: string): string {
  const hosts = runtime.config.hosts().filter((h) => runtime.isHostActive(h));
  const file = runtime.config.file;
  const configArg = options.embeddedConfig ? " --embedded-config" : runtime.config.source === "argument" && file ? ` --config ${quote(file)}` : "";
  const lines = [""];
  for (const host of hosts) {
    const api = runtime.modules.get(host, "invites_api");
    if (!api) continue;
    const url = api.httpUrl();
    lines.push(
      `Serving ${host}: invites are created at ${url}`,
      "Next steps:",
      `  1. make an API key:    ${quote(command)}${configArg} mod_invites_api create ${quote(host)}`,
      `  2. create an invite:   curl -i -X POST -H "Authorization: Bearer KEY" ${url}`,
      "     (KEY is the line step 1 printed; the answer's Location header is the invite link)",
      "",
    );
    return lines.join("\n");
  }
  const page = hosts.map((h) => runtime.modules.get(h, "invites_page")).find((m) => m !== undefined);
  lines.push(page ? `Serving: invite pages at ${page.httpUrl()}` : `Serving ${hosts.join(", ")}`, "");
  return lines.join("\n");
}

/** Quotes a shell word when it needs it. */
function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
