/**
 * Prosody's `log` option (core/loggingmanager.lua) read into a list of sink rules, every form it
 * accepts:
 *
 * - unset: the console at `info` (`debug` when the global `debug` option is true);
 * - `"*sink"`: that sink at every level; any other string: that file at `info` (or `debug`);
 * - a table keyed by level: `{ info = "/var/log/prosody/prosody.log", error = "*syslog" }`, each
 *   entry a file (with timestamps) or a `*sink` from that level up;
 * - list entries in the same table: `"*syslog"` (every level) or
 *   `{ to = "file", filename = …, levels = { min = "info" } | { "warn", "error" }, timestamps, source_width }`.
 *
 * Deliberate difference: Prosody silently drops a rule naming an unknown sink, a level it does
 * not know or a file it cannot open; a typo then loses the log. Here every such mistake is a
 * LogConfigError, which stops the start with its message.
 */
import type { Config } from "./config/index.js";
import type { LogLevel, OptionValue } from "./types.js";

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** Sinks Prosody 0.12 has (nowhere, file, stdout, console, syslog), plus stderr. */
export const SINK_TYPES = ["file", "console", "stdout", "stderr", "syslog", "nowhere"] as const;
export type SinkType = (typeof SINK_TYPES)[number];

export interface SinkRule {
  to: SinkType;
  /** The levels this sink receives. */
  levels: Set<LogLevel>;
  /** Resolved against the working directory (file sinks only). */
  filename?: string;
  /** strftime format (with its trailing space), or false for none. */
  timestamps: string | false;
  /** Column width for the source name, growing to fit (console-style layout), or none: tabs. */
  sourceWidth?: number;
  /** syslog ident and facility (syslog sinks only). */
  syslogName?: string;
  syslogFacility?: string;
}

export class LogConfigError extends Error {
  constructor(message: string) {
    super(`Invalid 'log' option: ${message}`);
    this.name = "LogConfigError";
  }
}

/** Prosody's default file timestamp: "Dec 05 01:27:52 ". */
export const DEFAULT_TIMESTAMP = "%b %d %H:%M:%S ";

const LEVEL_KEYS = new Set<string>(LOG_LEVELS);

function isLevel(x: unknown): x is LogLevel {
  return typeof x === "string" && LEVEL_KEYS.has(x);
}

function isSinkType(x: unknown): x is SinkType {
  return typeof x === "string" && (SINK_TYPES as readonly string[]).includes(x);
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : typeof v === "object" ? "a table" : String(v);
}

/** `from` and every level above it. */
function fromLevel(level: LogLevel): Set<LogLevel> {
  return new Set(LOG_LEVELS.slice(LOG_LEVELS.indexOf(level)));
}

/** A Lua table as the loader hands it over: a sequence is an array, a mixed table an object with keys "1", "2", …. */
function sequence(v: OptionValue): OptionValue[] {
  if (Array.isArray(v)) return v;
  if (typeof v !== "object" || v === null) return [];
  const out: OptionValue[] = [];
  // As Lua's ipairs: from 1 up to the first missing index.
  for (let i = 1; Object.hasOwn(v, String(i)); i++) out.push(v[String(i)]!);
  return out;
}

function isIndexKey(key: string, length: number): boolean {
  return /^[1-9][0-9]*$/.test(key) && Number(key) <= length;
}

/**
 * Prosody's level criteria: a level name (that level only), a list of names, or
 * `{ min = …, max = … }`. As in Prosody, `max` without `min` selects that one level.
 */
function levelsOf(criteria: OptionValue | undefined, where: string): Set<LogLevel> {
  if (criteria === undefined) return new Set(LOG_LEVELS);
  if (typeof criteria === "string") {
    if (!isLevel(criteria)) throw new LogConfigError(`${where}: unknown level ${show(criteria)} (use debug, info, warn or error)`);
    return new Set([criteria]);
  }
  if (typeof criteria !== "object" || criteria === null) throw new LogConfigError(`${where}: levels must be a level name or a table, not ${show(criteria)}`);
  const set = new Set<LogLevel>();
  const list = sequence(criteria);
  const table = Array.isArray(criteria) ? {} : criteria;
  for (const [key, value] of Object.entries(table)) {
    if (isIndexKey(key, list.length)) continue;
    if (key !== "min" && key !== "max") throw new LogConfigError(`${where}: unknown key ${show(key)} in levels (use min, max or a list of levels)`);
    if (!isLevel(value)) throw new LogConfigError(`${where}: levels.${key} is ${show(value)}, not a level (debug, info, warn or error)`);
  }
  const min = (table as Record<string, OptionValue>).min as LogLevel | undefined;
  const max = (table as Record<string, OptionValue>).max as LogLevel | undefined;
  if (min !== undefined || max !== undefined) {
    let inRange = false;
    for (const level of LOG_LEVELS) {
      if (level === min) {
        set.add(level);
        inRange = true;
      } else if (level === max) {
        set.add(level);
        break;
      } else if (inRange) set.add(level);
    }
  }
  for (const level of list) {
    if (!isLevel(level)) throw new LogConfigError(`${where}: unknown level ${show(level)} in levels (use debug, info, warn or error)`);
    set.add(level);
  }
  return set;
}

function timestampsOf(v: OptionValue | undefined, fallback: string | false, where: string): string | false {
  if (v === undefined) return fallback;
  if (v === true) return DEFAULT_TIMESTAMP;
  if (v === false) return false;
  if (typeof v === "string") return `${v} `;
  throw new LogConfigError(`${where}: timestamps must be true, false or a format string, not ${show(v)}`);
}

interface Context {
  resolvePath: (p: string) => string;
  facility: string | undefined;
}

function fileRule(filename: string, levels: Set<LogLevel>, ctx: Context): SinkRule {
  if (filename === "") throw new LogConfigError("a log file name is empty");
  return { to: "file", levels, filename: ctx.resolvePath(filename), timestamps: DEFAULT_TIMESTAMP };
}

/** A bare sink with Prosody's defaults for its type. */
function sinkRule(to: SinkType, levels: Set<LogLevel>, ctx: Context): SinkRule {
  const rule: SinkRule = { to, levels, timestamps: false };
  if (to === "console" || to === "stdout" || to === "stderr") rule.sourceWidth = 20;
  if (to === "syslog") {
    rule.syslogName = "prosody";
    rule.syslogFacility = ctx.facility ?? "daemon";
  }
  return rule;
}

function starSink(value: string, levels: Set<LogLevel>, ctx: Context, where: string): SinkRule {
  const to = value.slice(1);
  if (!isSinkType(to) || to === "file") {
    throw new LogConfigError(`${where}: unknown sink ${show(value)} (use a file name, "*console", "*stdout", "*stderr", "*syslog" or "*nowhere")`);
  }
  return sinkRule(to, levels, ctx);
}

const ADVANCED_KEYS = new Set(["to", "levels", "filename", "timestamps", "source_width", "buffer_mode", "syslog_name", "syslog_facility"]);

/** One `{ to = …, … }` entry of the list form. */
function advancedRule(entry: { [key: string]: OptionValue }, ctx: Context, where: string): SinkRule {
  for (const key of Object.keys(entry)) {
    if (!ADVANCED_KEYS.has(key)) throw new LogConfigError(`${where}: unknown key ${show(key)} (use to, levels, filename, timestamps, source_width, syslog_name, syslog_facility)`);
  }
  const to = entry.to;
  if (!isSinkType(to)) throw new LogConfigError(`${where}: unknown sink to = ${show(to)} (use "file", "console", "stdout", "stderr", "syslog" or "nowhere")`);
  const levels = levelsOf(entry.levels, where);
  const rule = sinkRule(to, levels, ctx);
  if (to === "file") {
    if (typeof entry.filename !== "string" || entry.filename === "") throw new LogConfigError(`${where}: a "file" sink needs filename = "…"`);
    rule.filename = ctx.resolvePath(entry.filename);
    rule.timestamps = DEFAULT_TIMESTAMP;
  }
  rule.timestamps = timestampsOf(entry.timestamps, rule.timestamps, where);
  const width = entry.source_width;
  if (width !== undefined) {
    if (width === false) delete rule.sourceWidth;
    else if (typeof width === "number" && Number.isInteger(width) && width >= 0 && width <= 200) rule.sourceWidth = width;
    else throw new LogConfigError(`${where}: source_width must be a whole number from 0 to 200, not ${show(width)}`);
  }
  if (to === "syslog") {
    if (entry.syslog_name !== undefined) {
      if (typeof entry.syslog_name !== "string" || !/^[^\s\0]{1,48}$/.test(entry.syslog_name)) throw new LogConfigError(`${where}: syslog_name must be a short word, not ${show(entry.syslog_name)}`);
      rule.syslogName = entry.syslog_name;
    }
    if (entry.syslog_facility !== undefined) rule.syslogFacility = facilityOf(entry.syslog_facility, where);
  }
  return rule;
}

/** syslog facilities by name (<syslog.h>), as Prosody's pposix accepts them. */
export const FACILITIES: Record<string, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};

function facilityOf(v: OptionValue, where: string): string {
  if (typeof v === "string" && Object.hasOwn(FACILITIES, v)) return v;
  throw new LogConfigError(`${where}: unknown syslog facility ${show(v)} (use daemon, user, local0 … local7, …)`);
}

export interface LogConfigOptions {
  /** Relative log file names resolve against this directory. */
  cwd: string;
}

/** The sink rules the config's `log` option asks for, or throws LogConfigError. */
export function logRules(config: Config, opts: LogConfigOptions): SinkRule[] {
  const debug = config.get("*", "debug") === true;
  const facilityOption = config.get("*", "syslog_facility");
  const ctx: Context = {
    resolvePath: (p) => (p.startsWith("/") ? p : `${opts.cwd.replace(/\/$/, "")}/${p}`),
    facility: facilityOption === undefined ? undefined : facilityOf(facilityOption, "syslog_facility"),
  };
  const defaultLevels = fromLevel(debug ? "debug" : "info");
  const log = config.get("*", "log");
  if (log === undefined) return [sinkRule("console", defaultLevels, ctx)];
  if (typeof log === "string") {
    if (log.startsWith("*")) return [starSink(log, new Set(LOG_LEVELS), ctx, `log = ${show(log)}`)];
    return [fileRule(log, defaultLevels, ctx)];
  }
  if (typeof log !== "object" || log === null) throw new LogConfigError(`expected a file name or a table, not ${show(log)}`);

  const rules: SinkRule[] = [];
  const list = sequence(log);
  if (!Array.isArray(log)) {
    for (const key of Object.keys(log)) {
      if (!isIndexKey(key, list.length) && !isLevel(key)) throw new LogConfigError(`unknown key ${show(key)} (use debug, info, warn, error or list entries)`);
    }
    // Level keys in level order, then the list entries, as Prosody applies them.
    for (const key of LOG_LEVELS) {
      if (!Object.hasOwn(log, key)) continue;
      const value = (log as Record<string, OptionValue>)[key];
      if (typeof value !== "string") throw new LogConfigError(`${key} = ${show(value)}: expected a file name or "*sink"`);
      const where = `${key} = ${show(value)}`;
      rules.push(value.startsWith("*") ? starSink(value, fromLevel(key), ctx, where) : fileRule(value, fromLevel(key), ctx));
    }
  }
  list.forEach((entry, i) => {
    const where = `entry ${i + 1}`;
    if (typeof entry === "string") {
      if (!entry.startsWith("*")) throw new LogConfigError(`${where} is ${show(entry)}: a list entry is "*sink" or a table { to = …, … }`);
      rules.push(starSink(entry, new Set(LOG_LEVELS), ctx, where));
    } else if (typeof entry === "object" && entry !== null && !Array.isArray(entry)) {
      rules.push(advancedRule(entry, ctx, where));
    } else {
      throw new LogConfigError(`${where} is ${show(entry)}: a list entry is "*sink" or a table { to = …, … }`);
    }
  });
  return rules;
}
