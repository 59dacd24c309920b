/** Captures log records for assertions. */
import { setLogLevel, setLogSink, type LogRecord } from "../../src/core/logger.js";

export function captureLogs(): { records: LogRecord[]; messages(level?: string): string[]; restore(): void } {
  const records: LogRecord[] = [];
  const prev = setLogSink((r) => records.push(r));
  setLogLevel("debug");
  return {
    records,
    messages: (level) => records.filter((r) => !level || r.level === level).map((r) => r.message),
    restore: () => {
      setLogSink(prev);
      setLogLevel("info");
    },
  };
}
