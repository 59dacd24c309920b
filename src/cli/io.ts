/** Where a prosodyctl invocation reads its environment and writes its output (tests pass their own). */
export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  argv0: string;
  /** Switch from root to prosody_user (the executable does; in-process callers don't). */
  dropPrivileges: boolean;
}
