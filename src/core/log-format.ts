/**
 * Prosody's log line layouts (core/loggingmanager.lua), byte for byte:
 *
 * - files: `<timestamp>source\tlevel\tmessage` with the timestamp "%b %d %H:%M:%S " in local time,
 *   e.g. "Dec 05 01:27:52 startup\tinfo\tHello";
 * - console, stdout: no timestamp, the source padded to a column that starts at 20 and widens
 *   (for good) to fit a longer name plus two spaces: "startup             info\tHello".
 *
 * A file sink given `source_width` uses the column layout too; a console given `timestamps` gets
 * them. On a terminal the console colours the level as Prosody does (bold, bold yellow, bold red).
 */
import type { LogLevel } from "./types.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTHS_LONG = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const DAYS_LONG = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

const pad = (n: number, width = 2, fill = "0") => String(n).padStart(width, fill);

function offset(d: Date): string {
  const minutes = -d.getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `${minutes < 0 ? "-" : "+"}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}

/**
 * C's strftime in the C locale and local time (what Lua's os.date does), for the conversions a
 * log timestamp uses; an unknown conversion is kept as written.
 */
export function strftime(format: string, d: Date): string {
  return format.replace(/%([a-zA-Z%])/g, (m, c: string) => {
    switch (c) {
      case "a": return DAYS[d.getDay()]!;
      case "A": return DAYS_LONG[d.getDay()]!;
      case "b": case "h": return MONTHS[d.getMonth()]!;
      case "B": return MONTHS_LONG[d.getMonth()]!;
      case "d": return pad(d.getDate());
      case "e": return pad(d.getDate(), 2, " ");
      case "H": return pad(d.getHours());
      case "I": return pad(d.getHours() % 12 || 12);
      case "j": return pad(Math.floor((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 0)) / 86_400_000), 3);
      case "m": return pad(d.getMonth() + 1);
      case "M": return pad(d.getMinutes());
      case "p": return d.getHours() < 12 ? "AM" : "PM";
      case "S": return pad(d.getSeconds());
      case "s": return String(Math.floor(d.getTime() / 1000));
      case "y": return pad(d.getFullYear() % 100);
      case "Y": return String(d.getFullYear());
      case "z": return offset(d);
      case "F": return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
      case "T": return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      case "D": return `${pad(d.getMonth() + 1)}/${pad(d.getDate())}/${pad(d.getFullYear() % 100)}`;
      case "%": return "%";
      default: return m;
    }
  });
}

/** Terminal styles of the levels, as Prosody's console uses them (debug stays plain). */
const LEVEL_STYLE: Partial<Record<LogLevel, string>> = { info: "1", warn: "1;33", error: "1;31" };

export interface LineLayout {
  timestamps: string | false;
  /** Column layout when set (the start width); tab-separated otherwise. */
  sourceWidth?: number;
  /** Colour the level (a console on a terminal). */
  colour?: boolean;
}

/**
 * A formatter for one sink. Stateful like Prosody's: the source column only ever widens.
 */
export function lineFormatter(layout: LineLayout): (time: Date, source: string, level: LogLevel, message: string) => string {
  let width = layout.sourceWidth;
  return (time, source, level, message) => {
    const stamp = layout.timestamps === false ? "" : strftime(layout.timestamps, time);
    const style = layout.colour ? LEVEL_STYLE[level] : undefined;
    const shown = style ? `\x1b[${style}m${level}\x1b[0m` : level;
    if (width === undefined) return `${stamp}${source}\t${shown}\t${message}\n`;
    // Lua's #name counts bytes: a non-ASCII host name pads as Prosody pads it.
    const length = Buffer.byteLength(source);
    width = Math.max(length + 2, width);
    return `${stamp}${source}${" ".repeat(width - length)}${shown}\t${message}\n`;
  };
}
