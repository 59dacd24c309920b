/**
 * Logging: one sink per process, loggers named like Prosody's ("HOST:NAME", "mod_NAME", "general").
 * printf-style formatting where %s accepts any value (as Prosody's util.format does).
 */
import { format as nodeFormat } from "node:util";
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

export function consoleSink(r: LogRecord): void {
  const line = `${r.time.toISOString()} ${r.source.padEnd(24)} ${r.level.padEnd(5)}\t${r.message}\n`;
  (r.level === "error" || r.level === "warn" ? process.stderr : process.stderr).write(line);
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
    if (n < minLevel) return;
    sink({ time: new Date(), source, level, message: formatMessage(fmt, args) });
  };
}
