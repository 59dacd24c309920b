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
  /** Switch from root to prosody_user (the executable does; in-process callers don't). */
  dropPrivileges: boolean;
}
