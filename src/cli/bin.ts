/** Entry point of the prosodyctl executable. */
import { basename, delimiter, dirname, isAbsolute, relative, resolve } from "node:path";
import { main } from "./prosodyctl.js";

function exitSoon(code: number): void {
  process.exitCode = code;
  // Normally nothing is left and node exits now; if some handle lingers, don't hang the shell.
  setTimeout(() => process.exit(code), 2000).unref();
}

// Help and hints name the command as it was run: prosodyctl-ts when installed globally (package.json
// "bin", so Debian's /usr/bin/prosodyctl stays Prosody's), prosodyctl from prosodyctl-shim/.
const script = process.argv[1] ?? "prosodyctl";
const argv0 = basename(script);

/** The name when its directory is on PATH, else a path from the working directory. */
function runnable(): string {
  const dir = dirname(resolve(script));
  if ((process.env.PATH ?? "").split(delimiter).some((p) => p !== "" && resolve(p) === dir)) return argv0;
  const rel = relative(process.cwd(), resolve(script));
  return rel.startsWith("..") || isAbsolute(rel) ? resolve(script) : `./${rel}`;
}

main(process.argv.slice(2), { dropPrivileges: true, argv0, command: runnable() }).then(exitSoon, (err) => {
  process.stderr.write(`prosodyctl: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  exitSoon(1);
});
