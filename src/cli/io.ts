/** Where a prosodyctl invocation reads its environment and writes its output (tests pass their own). */
export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** The command's name for usage lines (prosodyctl, prosodyctl-ts). */
  argv0: string;
  /** How to run this command again from `cwd` (hints print it); default: argv0. */
  command?: string;
  /**
   * Where adduser/passwd read passwords; default: a terminal or lines on `input`. A command the
   * server runs for prosodyctl asks that prosodyctl (the prompt stays in its process).
   */
  passwordInput?: PasswordInput;
  /** The terminal's width in columns (COLUMNS, else the terminal's), for tables; unset: none. */
  width?: number;
  /** Switch from root to prosody_user (the executable does; in-process callers don't). */
  dropPrivileges: boolean;
}

export const INTERRUPTED = Symbol("interrupted");

/** Where adduser and passwd read a password and the "try again?" answer. */
export interface PasswordInput {
  /** One line typed without echo; undefined at end of input. */
  readSecret(): Promise<string | undefined | typeof INTERRUPTED>;
  /** One key on a terminal, else the first character of the next line; undefined at end of input. */
  readChoice(): Promise<string | undefined | typeof INTERRUPTED>;
  close(): void;
}
