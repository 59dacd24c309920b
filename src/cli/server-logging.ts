/**
 * Logging for `prosodyctl start`: the config's `log` option (src/core/logging.ts), unless -v,
 * --quiet or --silent was given; then, as prosodyctl does for its own commands, the console at
 * debug, at error, or nothing replaces it for this run.
 */
import type { Config } from "../core/config/index.js";
import { LogConfigError, LogSetup } from "../core/logging.js";
import type { CliIO } from "./io.js";
import type { GlobalOptions } from "./options.js";

/** The server's log setup, or the exit code after the reason was printed (an invalid `log` option). */
export function startServerLogging(config: Config, options: GlobalOptions, io: CliIO): LogSetup | number {
  const opts = { cwd: io.cwd, env: io.env };
  try {
    if (options.silent) return LogSetup.console("silent", opts);
    if (options.quiet) return LogSetup.console("error", opts);
    if (options.verbose) return LogSetup.console("debug", opts);
    return LogSetup.fromConfig(config, opts);
  } catch (err) {
    if (!(err instanceof LogConfigError)) throw err;
    io.stderr(`${err.message}\n`);
    return 1;
  }
}
