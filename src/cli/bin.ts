/** Entry point of the prosodyctl executable. */
import { main } from "./prosodyctl.js";

function exitSoon(code: number): void {
  process.exitCode = code;
  // Normally nothing is left and node exits now; if some handle lingers, don't hang the shell.
  setTimeout(() => process.exit(code), 2000).unref();
}

main(process.argv.slice(2), { dropPrivileges: true }).then(exitSoon, (err) => {
  process.stderr.write(`prosodyctl: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  exitSoon(1);
});
