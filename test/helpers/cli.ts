/** Runs the built prosodyctl shim as a real process. */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const PROSODYCTL = resolve(import.meta.dirname, "../../prosodyctl-shim/prosodyctl");

export interface Ran {
  stdout: string;
  stderr: string;
  code: number | null;
}

/**
 * `asTyped`: run the executable itself, as an admin types it (its `#!` line: its node options and
 * environment), rather than through `node`. An `env` value of undefined removes that variable.
 */
export function prosodyctl(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; asTyped?: boolean } = {}): Promise<Ran> {
  return new Promise((resolveRun, reject) => {
    const [cmd, argv] = opts.asTyped ? [PROSODYCTL, args] : [process.execPath, [PROSODYCTL, ...args]];
    const child = spawn(cmd, argv, {
      cwd: opts.cwd,
      // This machine's /etc/prosody/prosody.cfg.lua stays out of the search unless a test names one.
      env: { ...process.env, PROSODY_TS_SYSTEM_CONFIG: process.env.PROSODY_TS_SYSTEM_CONFIG ?? "", ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolveRun({ stdout, stderr, code }));
    child.stdin.end(opts.input ?? "");
  });
}

/**
 * A temporary directory with a prosody.cfg.lua holding `body`; `$DIR` in body is replaced.
 * Unless the body says otherwise, `run_as_root = true`: tests run as root in CI, where a
 * `prosody` user exists, and the temporary directories are root's.
 */
export function tempConfig(body: string): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-cfg-"));
  const config = join(dir, "prosody.cfg.lua");
  const text = /\brun_as_root\b/.test(body) ? body : `run_as_root = true\n${body}`;
  writeFileSync(config, text.replaceAll("$DIR", dir));
  return { dir, config };
}
