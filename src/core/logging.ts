/**
 * The server's logging as its config says (Prosody's loggingmanager): the `log` option's rules
 * (src/core/log-config.ts) become sinks, each with its levels; the process-wide logger
 * (src/core/logger.ts) then sends every record to the sinks of its level.
 *
 * Files are opened when the setup is built, so an unwritable one stops the start; they are
 * written synchronously, one write per line (as Prosody's line-buffered files), so a crash loses
 * nothing already logged. On `reopen-log-files` (SIGHUP, logrotate's postrotate) every file is
 * opened again by name and the old descriptor closed; on `config-reloaded` a changed `log` option
 * is applied. A problem at that point is reported and the previous sinks stay.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import type { Config } from "./config/index.js";
import type { EventBus } from "./events.js";
import { lineFormatter } from "./log-format.js";
import { LOG_LEVELS, LogConfigError, logRules, type SinkRule } from "./log-config.js";
import { SyslogWriter } from "./log-syslog.js";
import { consoleSink, createLogger, setLogLevel, setLogSink, type LogRecord, type LogSink } from "./logger.js";
import type { LogLevel, Unhook } from "./types.js";

export { LogConfigError } from "./log-config.js";

const log = createLogger("general");

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One log file, kept open; reopened by name on request. */
class LogFile {
  private fd: number;
  private failed = false;

  constructor(readonly path: string) {
    this.fd = LogFile.open(path);
  }

  private static open(path: string): number {
    try {
      return openSync(path, "a", 0o640);
    } catch (err) {
      throw new Error(`cannot open log file ${path}: ${errorText(err)}`);
    }
  }

  write(line: string): void {
    try {
      writeSync(this.fd, line);
      this.failed = false;
    } catch (err) {
      // A full disk must not stop the server; say so once per failure spell, where it can be seen.
      if (!this.failed) process.stderr.write(`Cannot write to log file ${this.path}: ${errorText(err)}\n`);
      this.failed = true;
    }
  }

  /** Opens the name again (a file moved away is created anew), then closes the old descriptor. */
  reopen(): void {
    const fd = LogFile.open(this.path);
    const old = this.fd;
    this.fd = fd;
    closeSync(old);
  }

  close(): void {
    closeSync(this.fd);
  }
}

export interface LoggingOptions {
  /** Relative log file names resolve against this directory. */
  cwd: string;
  /** For PATH (finding `logger`) and PROSODY_SYSLOG_SOCKET. Default process.env. */
  env?: NodeJS.ProcessEnv;
}

interface Built {
  sinks: Record<LogLevel, LogSink[]>;
  files: LogFile[];
  syslog?: SyslogWriter;
}

const guarded = new WeakSet<NodeJS.WriteStream>();
const broken = new WeakSet<NodeJS.WriteStream>();

/**
 * A reader that went away (`prosodyctl start | head`, a stopped journal) makes writes fail with
 * EPIPE, which Node raises as an uncaught error: the server must not die of it. That stream is
 * then left alone; the other sinks go on.
 */
function guard(stream: NodeJS.WriteStream): void {
  if (guarded.has(stream)) return;
  guarded.add(stream);
  stream.on("error", () => broken.add(stream));
}

function streamSink(stream: NodeJS.WriteStream, rule: SinkRule, colour: boolean): LogSink {
  const format = lineFormatter({ timestamps: rule.timestamps, sourceWidth: rule.sourceWidth, colour });
  guard(stream);
  return (r) => {
    if (!broken.has(stream)) stream.write(format(r.time, r.source, r.level, r.message));
  };
}

/**
 * Opens every sink of `rules`. `reuse`: the current syslog writer, kept when ident and facility
 * are unchanged. On failure everything opened here is closed again and the error thrown.
 */
function build(rules: SinkRule[], opts: LoggingOptions, reuse?: SyslogWriter): Built {
  const built: Built = { sinks: { debug: [], info: [], warn: [], error: [] }, files: [] };
  try {
    for (const rule of rules) {
      let sink: LogSink | undefined;
      switch (rule.to) {
        case "file": {
          let file: LogFile;
          try {
            file = new LogFile(rule.filename!);
          } catch (err) {
            throw new LogConfigError(errorText(err));
          }
          built.files.push(file);
          const format = lineFormatter({ timestamps: rule.timestamps, sourceWidth: rule.sourceWidth });
          sink = (r) => file.write(format(r.time, r.source, r.level, r.message));
          break;
        }
        case "console":
          sink = streamSink(process.stdout, rule, process.stdout.isTTY === true);
          break;
        case "stdout":
          sink = streamSink(process.stdout, rule, false);
          break;
        case "stderr":
          sink = streamSink(process.stderr, rule, false);
          break;
        case "syslog": {
          // One syslog connection per process, as openlog(): the first syslog rule names it.
          if (!built.syslog) {
            const same = reuse !== undefined && reuse.alive() && reuse.ident === rule.syslogName && reuse.facilityName === rule.syslogFacility;
            built.syslog = same ? reuse : new SyslogWriter(rule.syslogName!, rule.syslogFacility!, opts.env);
          }
          const writer = built.syslog;
          sink = (r) => writer.write(r.level, r.source, r.message);
          break;
        }
        case "nowhere":
          break;
      }
      if (sink) for (const level of rule.levels) built.sinks[level].push(sink);
    }
  } catch (err) {
    for (const f of built.files) f.close();
    if (built.syslog && built.syslog !== reuse) void built.syslog.close();
    throw err;
  }
  return built;
}

/** The process's logging as configured; one at a time (the last installed wins). */
export class LogSetup {
  private built: Built;

  private constructor(
    rules: SinkRule[],
    private readonly opts: LoggingOptions,
  ) {
    this.built = build(rules, opts);
    this.install();
  }

  /** Builds the sinks of the config's `log` option and routes all logging to them; throws LogConfigError. */
  static fromConfig(config: Config, opts: LoggingOptions): LogSetup {
    return new LogSetup(logRules(config, opts), opts);
  }

  /** Every level from `level` up to the console, or nothing ("silent"): prosodyctl's -v/--quiet/--silent. */
  static console(level: LogLevel | "silent", opts: LoggingOptions): LogSetup {
    const levels = level === "silent" ? [] : LOG_LEVELS.slice(LOG_LEVELS.indexOf(level));
    return new LogSetup([{ to: "console", levels: new Set(levels), timestamps: false, sourceWidth: 20 }], opts);
  }

  private install(): void {
    const { sinks } = this.built;
    const lowest = LOG_LEVELS.find((l) => sinks[l].length > 0);
    setLogSink((r: LogRecord) => {
      for (const sink of sinks[r.level]) sink(r);
    });
    // Records below every sink's levels are not even formatted.
    setLogLevel(lowest ?? "silent");
  }

  /** The files being written, in rule order. */
  files(): string[] {
    return this.built.files.map((f) => f.path);
  }

  /** Reopens every log file by name; one that cannot be reopened keeps its old descriptor. */
  reopen(): void {
    for (const file of this.built.files) {
      try {
        file.reopen();
      } catch (err) {
        log("error", "Keeping the old log file descriptor: %s", errorText(err));
      }
    }
  }

  /** Applies the `log` option of a reloaded config; a bad one is reported and the current sinks stay. */
  reconfigure(config: Config): void {
    let next: Built;
    try {
      next = build(logRules(config, this.opts), this.opts, this.built.syslog);
    } catch (err) {
      log("error", "Not applying the changed log configuration: %s", errorText(err));
      return;
    }
    const old = this.built;
    this.built = next;
    this.install();
    for (const f of old.files) f.close();
    if (old.syslog && old.syslog !== next.syslog) void old.syslog.close();
  }

  /** Hooks the runtime's global `reopen-log-files` and `config-reloaded` ({ config }) events. */
  attach(events: EventBus): Unhook {
    const onReopen = () => {
      this.reopen();
      return undefined;
    };
    const onReload = (event: { config?: Config } | undefined) => {
      if (event?.config) this.reconfigure(event.config);
      return undefined;
    };
    // Before other handlers: a module logging from its own config-reloaded handler writes to the new sinks.
    events.hook("config-reloaded", onReload, 1000);
    events.hook("reopen-log-files", onReopen, 1000);
    return () => {
      events.unhook("config-reloaded", onReload);
      events.unhook("reopen-log-files", onReopen);
    };
  }

  /** Closes files and the syslog writer and routes logging back to the default (stderr, info). */
  async close(): Promise<void> {
    setLogSink(consoleSink);
    setLogLevel("info");
    for (const f of this.built.files) f.close();
    this.built.files = [];
    await this.built.syslog?.close();
  }
}
