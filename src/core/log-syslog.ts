/**
 * The `*syslog` sink. Node cannot open the unix datagram socket syslog listens on, so one
 * long-lived util-linux `logger` child per process does it: it reads one line per message on
 * stdin, each prefixed with its priority (`--prio-prefix`), and sends it as syslog(3) would:
 * `<30>Dec  5 01:28:06 prosody[PID]: source: message` (verified against real Prosody's output).
 * `logger` is part of every Debian system (bsdutils, Essential), so no native npm module or build
 * step is needed, and the protocol is not written by hand.
 *
 * Prosody logs `syslog(level, "%s: %s", source, message)` with openlog(name, LOG_PID, facility):
 * same here (the PID is ours, not logger's). A message's line breaks become spaces, since each
 * line would otherwise be a separate syslog message.
 *
 * The socket is `/dev/log` unless PROSODY_SYSLOG_SOCKET names another (tests). Like syslog(3),
 * nothing fails when no syslog daemon listens: the lines are dropped.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { FACILITIES, LogConfigError } from "./log-config.js";
import type { LogLevel } from "./types.js";

const SEVERITY: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };

/** The `logger` executable on PATH, or undefined. */
function findLogger(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "/usr/bin:/bin").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, "logger");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export class SyslogWriter {
  private child: ChildProcess | undefined;
  private readonly facility: number;
  private exited: Promise<void>;

  constructor(
    readonly ident: string,
    readonly facilityName: string,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    const code = FACILITIES[facilityName];
    if (code === undefined) throw new LogConfigError(`unknown syslog facility ${JSON.stringify(facilityName)}`);
    this.facility = code;
    const bin = findLogger(env);
    if (!bin) throw new LogConfigError('"*syslog" needs the logger command (util-linux, Debian package bsdutils), which is not on PATH');
    const socket = env.PROSODY_SYSLOG_SOCKET;
    const args = [`--id=${process.pid}`, "-t", ident, "--prio-prefix", "--size", "16384", ...(socket ? ["--socket", socket] : [])];
    // Own process group: a Ctrl-C meant for the server must not stop its logger before the
    // shutdown lines are written. It ends by itself when its stdin closes (also if we are killed).
    const child = spawn(bin, args, { stdio: ["pipe", "ignore", "inherit"], detached: true });
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (err) => {
        process.stderr.write(`syslog: cannot run ${bin}: ${err.message}\n`);
        resolve();
      });
    });
    child.once("exit", (code, signal) => {
      if (this.child === child && (code !== 0 || signal)) process.stderr.write(`syslog: ${bin} exited (${signal ?? code}); syslog messages are dropped until the config is reloaded (SIGHUP)\n`);
      this.child = undefined;
    });
    child.stdin!.on("error", () => undefined); // a dead logger is reported by "exit"
    // The server's event loop must not wait for the logger.
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
  }

  /** False once logger has exited or was closed: a config reload then starts a new one. */
  alive(): boolean {
    return this.child !== undefined;
  }

  write(level: LogLevel, source: string, message: string): void {
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed) return;
    const text = `${source}: ${message}`.replace(/\r?\n|\r/g, " ");
    stdin.write(`<${this.facility * 8 + SEVERITY[level]}>${text}\n`);
  }

  /** Lets logger send what it has and exit; resolves when it did (or after a second). */
  async close(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    // Held again while closing: with the child, its stdin and the timer all unref'd, nothing would
    // keep the event loop alive, and a process that awaits close() would end before it resolved.
    child.ref();
    (child.stdin as unknown as { ref?: () => void } | null)?.ref?.();
    child.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise<void>((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
  }
}
