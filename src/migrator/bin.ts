/** Entry point of the prosody-migrator executable (prosodyctl-shim/prosody-migrator, bin prosody-migrator-ts). */
import { runMigrator } from "./main.js";

function exitSoon(code: number): void {
  process.exitCode = code;
  // Normally nothing is left and node exits now; if some handle lingers (a pool), don't hang the shell.
  setTimeout(() => process.exit(code), 2000).unref();
}

const argv0 = process.argv[1] ?? "prosody-migrator";
runMigrator(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  argv0,
  cwd: process.cwd(),
  dropPrivileges: true,
}).then(exitSoon, (err: unknown) => {
  process.stderr.write(`prosody-migrator: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  exitSoon(1);
});
