#!/usr/bin/env node
// `npm start`: builds quietly without type declarations (they are for plugin authors and
// packaging: `npm run build`), then runs the server on the embedded default config in this
// process. `--embedded-config` is explicit so that a machine with Prosody installed
// (/etc/prosody/prosody.cfg.lua) still gets the trial run the README promises, not the system config.
// Arguments after `npm start --` go before the command word (e.g. `npm start -- -v`).
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const tsup = join(dirname(createRequire(import.meta.url).resolve("tsup/package.json")), "dist", "cli-default.js");
const build = spawnSync(process.execPath, [tsup, "--silent"], {
  cwd: root,
  env: { ...process.env, PROSODY_TS_BUILD: "quick" },
  stdio: ["ignore", "ignore", "inherit"],
});
if (build.status !== 0) {
  process.stderr.write(`npm start: the build failed (run "npm run build" to see why)\n`);
  process.exit(1);
}
const shim = join(root, "prosodyctl-shim", "prosodyctl");
process.argv = [process.argv[0], shim, ...process.argv.slice(2), "--embedded-config", "start"];
await import(pathToFileURL(shim).href);
