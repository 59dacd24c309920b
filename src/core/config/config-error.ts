/** A config file that cannot be read or evaluated. `message` is one line: "file:line: reason". */
export class ConfigError extends Error {
  override name = "ConfigError";
  /** File the error points at, when known. */
  readonly file?: string;
  /** Line in that file, when known. */
  readonly line?: number;

  constructor(message: string, where: { file?: string; line?: number; cause?: unknown } = {}) {
    super(message, where.cause === undefined ? undefined : { cause: where.cause });
    this.file = where.file;
    this.line = where.line;
  }
}
