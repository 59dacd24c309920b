/**
 * Entry point of the prosodyctl executable. Help, --version and usage errors are answered here,
 * before the rest of prosodyctl (storage engines, sql.js, the runtime) is loaded: they open no
 * store, and loading it all costs ~50 ms of a ~110 ms process (issue 15: such commands within
 * `node -e 0` + 40 ms). Their output is exactly what main() would print.
 */
import { basename, delimiter, dirname, isAbsolute, relative, resolve } from "node:path";
import { handOverExtraCaCerts } from "../util/extra-ca-handover.js";
import { helpText } from "./help.js";
import { parseArgs } from "./options.js";
import { versionLine } from "./version.js";

// Before anything reads the environment: NODE_EXTRA_CA_CERTS, which the executable's first line
// kept from node's start (src/util/extra-ca.ts says why), is back for the processes this one starts.
handOverExtraCaCerts();

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

/** The answer when it needs nothing but the command line, else undefined. */
function answerWithoutLoading(parsed: ReturnType<typeof parseArgs>): number | undefined {
  if (!parsed.ok) {
    process.stdout.write(`${parsed.error}\n`);
    return 1;
  }
  if (parsed.options.version) {
    process.stdout.write(`${versionLine()}\n`);
    return 0;
  }
  if (!parsed.command || parsed.options.help) {
    process.stdout.write(helpText(argv0));
    return 0;
  }
  return undefined;
}

/**
 * The rest of prosodyctl (an ES module). prosodyctl-shim/prosodyctl runs this file's CommonJS
 * bundle through node:vm (to use its V8 code cache), where import() needs an experimental Node
 * feature, so it passes an import function of its own (also used by src/core/config/_fengari.ts).
 */
declare const __prosodyctlImport: ((specifier: string) => Promise<unknown>) | undefined;
type Rest = typeof import("./prosodyctl.js");
const loadRest = (): Promise<Rest> =>
  typeof __prosodyctlImport === "function" ? (__prosodyctlImport("./prosodyctl.js") as Promise<Rest>) : import("./prosodyctl.js");

const argv = process.argv.slice(2);
const fail = (err: unknown) => {
  process.stderr.write(`prosodyctl: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
  exitSoon(1);
};
const parsed = parseArgs(argv);
const quick = answerWithoutLoading(parsed);
const opts = { dropPrivileges: true, argv0, command: runnable() };
if (quick !== undefined) exitSoon(quick);
else
  // A command the running server may run, or `about`: only the config and the socket client are
  // loaded first (src/cli/startup.ts); the rest of prosodyctl when it runs here after all.
  import("./startup.js")
    .then(async ({ runFirst }) => {
      const first = parsed.ok ? await runFirst(argv, parsed, opts) : undefined;
      if (typeof first === "number") return first;
      const { main } = await loadRest();
      return main(argv, opts, first);
    })
    .then(exitSoon, fail);
