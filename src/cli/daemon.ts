/**
 * `prosodyctl status|stop|restart|reload`: Prosody 0.12's messages and exit codes, acting on our
 * pidfile (src/cli/pidfile.ts: never Prosody's, never a process that is not our server).
 *
 * `start` stays in the foreground (systemd Type=simple, tests, a terminal); Prosody's prosodyctl
 * start daemonizes instead. `restart` needs a server that outlives the command, so it starts one
 * detached (its own session, output discarded: configure a `log` file), and waits for its pidfile
 * as Prosody's does ("Started", or exit 2 after `prosodyctl_timeout` seconds).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../core/config/index.js";
import { PACKAGE_ROOT } from "../core/paths.js";
import { dataDirOf } from "../core/data-dir.js";
import type { CliIO } from "./io.js";
import { PIDFILE_ERRORS, pidfilePath, processInfo, runningPid } from "./pidfile.js";

export const DAEMON_COMMANDS = ["status", "stop", "restart", "reload"] as const;
export type DaemonCommand = (typeof DAEMON_COMMANDS)[number];

export function isDaemonCommand(command: string): command is DaemonCommand {
  return (DAEMON_COMMANDS as readonly string[]).includes(command);
}

const USAGE: Record<DaemonCommand, string> = {
  status: "Reports the running status of Prosody",
  stop: "Stop a running Prosody server",
  restart: "Restart a running Prosody server",
  reload: "Reload Prosody's configuration and re-open log files",
};

/** Where a unit of ours would be installed: its presence means an init system manages us. */
export const UNIT_FILES = ["/etc/systemd/system/prosody-ts.service", "/lib/systemd/system/prosody-ts.service"];

export interface DaemonContext {
  io: CliIO;
  /** Loads the config (switching user when root); a number is an exit code, already explained. */
  loadConfig: () => Promise<{ config: Config; switched?: boolean } | number>;
  /** Global options to hand to a detached `start` (--root). */
  root: boolean;
  /** Interval between checks in ms (500 as Prosody; tests shorten it). */
  pollMs?: number;
}

type State = { error: string } | { pid: number | undefined; path: string };

function stateOf(config: Config, cwd: string): State {
  const where = pidfilePath(config, dataDirOf(config, cwd));
  if ("error" in where) return { error: PIDFILE_ERRORS[where.error] };
  return { pid: runningPid(where.path), path: where.path };
}

/** Runs one of DAEMON_COMMANDS; resolves to the exit code. */
export async function runDaemonCommand(command: DaemonCommand, args: string[], ctx: DaemonContext): Promise<number> {
  const { io } = ctx;
  const say = (line: string) => io.stdout(`${line}\n`);
  if (args.includes("--help") || args.includes("-h")) {
    say(`Usage: ${io.argv0} ${command}`);
    say(` ${USAGE[command]}`);
    return command === "restart" ? 1 : 0; // COMPAT: Prosody's restart --help exits 1
  }
  if (args.length > 0) {
    say(`${command} takes no arguments (got: ${args.join(" ")})`);
    return 1;
  }
  const loaded = await ctx.loadConfig();
  if (typeof loaded === "number") return loaded;
  const { config } = loaded;
  const timeoutTicks = prosodyctlTimeout(config) * 2;
  const pollMs = ctx.pollMs ?? 500;

  if (command === "status") {
    const state = stateOf(config, io.cwd);
    if ("error" in state) return say(state.error), 1;
    if (state.pid !== undefined) return say(`Prosody is running with PID ${state.pid}`), 0;
    say("Prosody is not running");
    if (!loaded.switched && process.getuid?.() !== 0) {
      io.stdout(
        "\nNote:\n You will also see this if prosodyctl is not running under\n the same user account as Prosody. Try running as root (e.g. \n with 'sudo' in front) to gain access to Prosody's real status.\n",
      );
    }
    return 2;
  }

  serviceWarning(config, command, say);

  const stop = async (): Promise<number> => {
    const state = stateOf(config, io.cwd);
    if ("error" in state || state.pid === undefined) return say("Prosody is not running"), 1;
    try {
      process.kill(state.pid, "SIGTERM");
    } catch (err) {
      return say(`Error: ${(err as Error).message}`), 1;
    }
    for (let i = 1; ; i++) {
      // The process itself, not the file: it removes the file before its last flush ends.
      if (!processInfo(state.pid).ours) break;
      if (i === 5) say("Still waiting...");
      else if (i >= timeoutTicks) return say("Prosody is still running. Please give it some time or check your log files for errors."), 2;
      await sleep(pollMs);
    }
    say("Stopped");
    return 0;
  };

  if (command === "stop") return stop();

  if (command === "reload") {
    const state = stateOf(config, io.cwd);
    if ("error" in state || state.pid === undefined) return say("Prosody is not running"), 1;
    process.kill(state.pid, "SIGHUP");
    say("Prosody log files re-opened and config file reloaded. You may need to reload modules for some changes to take effect.");
    return 0;
  }

  // restart: stop (whatever it says), then start detached.
  await stop();
  serviceWarning(config, "start", say);
  const state = stateOf(config, io.cwd);
  if ("error" in state) return say(state.error), 1;
  if (state.pid !== undefined) return say(`Prosody is already running with PID ${state.pid}`), 1;
  startDetached(config, ctx);
  for (let i = 1; ; i++) {
    if (runningPid(state.path) !== undefined) break;
    if (i === 5) say("Still waiting...");
    else if (i >= timeoutTicks) return say("Prosody is still not running. Please give it some time or check your log files for errors."), 2;
    await sleep(pollMs);
  }
  say("Started");
  return 0;
}

// --- internal ---

/** `prosodyctl_timeout` (seconds, default 5), as Prosody reads it. */
function prosodyctlTimeout(config: Config): number {
  const v = config.get("*", "prosodyctl_timeout");
  return typeof v === "number" && v > 0 ? v : 5;
}

/**
 * Prosody's warning when an init system manages the server. Prosody shows it when installed as a
 * package; we show it when our unit file is installed (prosodyctl_service_warnings = false hides it).
 */
function serviceWarning(config: Config, command: string, say: (line: string) => void): void {
  if (config.get("*", "prosodyctl_service_warnings") === false) return;
  if (!UNIT_FILES.some((f) => existsSync(f))) return;
  say("WARNING: Use of prosodyctl start/stop/restart/reload is not recommended");
  say("         if Prosody is managed by an init system - use that directly instead.");
  say(`         e.g. systemctl ${command} prosody-ts`);
  say("");
}

/**
 * Node options the server runs with: `restart` starts it with them, and so do the README's systemd
 * unit, `npm start` and the executable's first line, for `prosodyctl start` typed by hand
 * (test/cli/server-node-flags.test.ts keeps them equal). A 1 MB semi-space
 * (V8's young generation; Node's default lets it grow to 16 MB each, ~48 MB in all, and keeps it):
 * at 100k invites, 20k more written through the API left the server at ~160 MB, ~139 MB with it
 * (peak 190–203 → ~153 MB), at the same throughput and p99 within the noise of bench/invites-api.
 */
export const SERVER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1"];

/** Node's arguments for `prosodyctl [--config FILE] [--root] start` with the server's options. */
export function detachedStartArgs(config: Config, root: boolean | undefined): string[] {
  const args = [...SERVER_NODE_FLAGS, join(PACKAGE_ROOT, "prosodyctl-shim", "prosodyctl")];
  // Found the same way as here otherwise (same environment and working directory).
  if (config.source === "argument" && config.file) args.push("--config", config.file);
  if (root) args.push("--root");
  args.push("start");
  return args;
}

/** `prosodyctl [--config FILE] [--root] start` as a detached process in its own session. */
function startDetached(config: Config, ctx: DaemonContext): void {
  const child = spawn(process.execPath, detachedStartArgs(config, ctx.root), { cwd: ctx.io.cwd, env: ctx.io.env, detached: true, stdio: "ignore" });
  child.on("error", () => undefined); // seen as "still not running"
  child.unref();
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
