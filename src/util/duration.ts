/**
 * Prosody's duration syntax (util.human.io.parse_duration, used by `--expires-after` and options
 * such as invite_expiry): a number and a unit, "1d", "2 weeks", "30min", "1mon", "1y"; a bare
 * number or an unknown unit fails. Months are 31 days, years 365.2425 days (whole seconds).
 */
const DAY = 86400;
const UNITS: Record<string, number> = { s: 1, min: 60, h: 3600, ho: 3600, d: DAY, w: 7 * DAY, mon: 31 * DAY, y: 365.2425 * DAY };

/** Seconds, or undefined when `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const m = /(\d+)\s*([smhdwy]?[io]?n?)/.exec(text.toLowerCase());
  const unit = m ? UNITS[m[2]!] : undefined;
  return m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : undefined;
}
