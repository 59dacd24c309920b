/**
 * What a prosodyctl process loads: a command on SQLite storage never loads the PostgreSQL client
 * (`pg` pulls in Node's fetch implementation, ~0.2 s of every process's start; issue 15's cold-CLI
 * budget), and help, --version and usage errors load no storage engine at all (issue 15: within
 * `node -e 0` + 40 ms). Observed through a module resolve hook in the real process, which reports
 * every package it resolves.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl, tempConfig } from "../helpers/cli.js";

// Registered before the CLI runs: prints "resolved <specifier>" for every module but Node's own.
const HOOK = `data:text/javascript,${encodeURIComponent(`
import { register } from "node:module";
register("data:text/javascript," + encodeURIComponent(\`
export async function resolve(specifier, context, next) {
  if (!specifier.startsWith("node:")) process.stderr.write("resolved " + specifier + "\\\\n");
  return next(specifier, context);
}\`));
`)}`;

test("a SQLite prosodyctl command does not load the PostgreSQL client", async () => {
  const { config } = tempConfig(`data_path = "$DIR/data"
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api" }
`);
  const r = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com", "k"], { env: { NODE_OPTIONS: `--import=${HOOK}` } });
  assert.is(r.code, 0, r.stderr);
  const resolved = r.stderr.split("\n").filter((l) => l.startsWith("resolved ")).map((l) => l.slice(9));
  assert.ok(resolved.includes("sql.js"), `the hook sees the packages loaded (${resolved.join(", ")})`);
  assert.not.ok(resolved.includes("pg"), `pg was loaded: ${resolved.join(", ")}`);
});

test("help, --version and a usage error do not load sql.js (nor the runtime that imports it)", async () => {
  for (const args of [["--help"], [], ["--version"], ["--no-such-option"], ["--config", "/nonexistent.cfg.lua", "--help"]]) {
    const r = await prosodyctl(args, { env: { NODE_OPTIONS: `--import=${HOOK}` } });
    const resolved = r.stderr.split("\n").filter((l) => l.startsWith("resolved ")).map((l) => l.slice(9));
    // (yargs-parser is bundled into dist/: the entry point is what shows the hook at work.)
    assert.ok(resolved.some((s) => s.endsWith("/dist/cli.js")), `${args.join(" ")}: the hook sees what is loaded (${resolved.join(", ")})`);
    assert.not.ok(resolved.includes("sql.js"), `${args.join(" ")} loaded sql.js: ${resolved.join(", ")}`);
    assert.ok(r.stdout.length > 0, "it answered");
  }
});

test.run();
