/**
 * Logging: one sink per process, loggers named like Prosody's ("HOST:NAME", "mod_NAME", "general").
 * A server routes the sink to the sinks of its `log` option (src/core/logging.ts).
 * printf-style formatting where %s accepts any value (as Prosody's util.format does).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { format as nodeFormat } from "node:util";
import { lineFormatter } from "./log-format.js";
import type { LogLevel } from "./types.js";

const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface LogRecord {
  time: Date;
  source: string;
  level: LogLevel;
  message: string;
}

export type LogSink = (record: LogRecord) => void;

let minLevel: number = LEVELS.info;
let sink: LogSink = consoleSink;

const consoleLine = lineFormatter({ timestamps: false, sourceWidth: 20 });

/**
 * The default sink (prosodyctl's commands, a server before its `log` option is applied): Prosody's
 * console layout, on stderr so that a command's own output on stdout stays clean.
 */
export function consoleSink(r: LogRecord): void {
  process.stderr.write(consoleText(r));
}

/** One record as the console sink prints it. */
export function consoleText(r: LogRecord): string {
  return consoleLine(r.time, r.source, r.level, r.message);
}

/** Where records logged inside `withLogCapture` go instead of the process's sink. */
interface Capture {
  sink: LogSink;
  minLevel: number;
  /** Once false (the capture ended), records go to the process's sink again. */
  active: () => boolean;
}
const captures = new AsyncLocalStorage<Capture>();

/**
 * Runs `fn` with every record it logs (at `level` or above, however the process's level is
 * set) sent to `capture` instead of the process's sink: a command the server runs for
 * prosodyctl logs to that prosodyctl's stderr as it would in-process. Work that outlives `fn`
 * (a timer it started) logs to the process's sink again.
 */
export async function withLogCapture<T>(capture: LogSink, level: LogLevel | "silent", fn: () => Promise<T>): Promise<T> {
  let active = true;
  const minLevel = level === "silent" ? Infinity : LEVELS[level];
  try {
    return await captures.run({ sink: capture, minLevel, active: () => active }, fn);
  } finally {
    active = false;
  }
}

/** Route every log record to `s` from now on; returns the previous sink. */
export function setLogSink(s: LogSink): LogSink {
  const prev = sink;
  sink = s;
  return prev;
}

export function setLogLevel(level: LogLevel | "silent"): void {
  minLevel = level === "silent" ? Infinity : LEVELS[level];
}

export function isLogLevel(x: string): x is LogLevel {
  return x in LEVELS;
}

/** Formats like Lua's string.format as Prosody uses it: %s of anything, %d, %q, %%. */
export function formatMessage(fmt: string, args: unknown[]): string {
  if (args.length === 0) return String(fmt);
  let i = 0;
  const out = String(fmt).replace(/%([-0-9.]*)([sdqifgx%])/g, (m, _flags: string, conv: string) => {
    if (conv === "%") return "%";
    if (i >= args.length) return m;
    const v = args[i++];
    switch (conv) {
      case "d":
      case "i":
        return String(Math.trunc(Number(v)));
      case "q":
        return JSON.stringify(String(v));
      case "f":
      case "g":
        return String(Number(v));
      case "x":
        return Math.trunc(Number(v)).toString(16);
      default:
        return stringify(v);
    }
  });
  return i < args.length ? `${out} ${args.slice(i).map(stringify).join(" ")}` : out;
}

function stringify(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof Error) return v.message;
  if (v === undefined || v === null) return "nil";
  if (typeof v === "object") return nodeFormat("%o", v);
  return String(v);
}

export type Logger = (level: LogLevel, fmt: string, ...args: unknown[]) => void;

export function createLogger(source: string): Logger {
  return (level, fmt, ...args) => {
    const n = LEVELS[level];
    if (n === undefined) throw new TypeError(`log: unknown level ${JSON.stringify(level)} (use debug, info, warn or error)`);
    const cap = captures.getStore();
    if (cap?.active()) {
      if (n >= cap.minLevel) cap.sink({ time: new Date(), source, level, message: formatMessage(fmt, args) });
      return;
    }
    if (n < minLevel) return;
    sink({ time: new Date(), source, level, message: formatMessage(fmt, args) });
  };
}
