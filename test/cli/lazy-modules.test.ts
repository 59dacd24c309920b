/**
 * What a prosodyctl process loads: a command on SQLite storage never loads the PostgreSQL client
 * (`pg` pulls in Node's fetch implementation, ~0.2 s of every process's start; issue 15's cold-CLI
 * budget), and help, --version, usage errors and `about` load no storage engine at all, and no ES module:
 * the executable's entry is one CommonJS file (issue 15: within `node -e 0` + 40 ms). Observed
 * through a module resolve hook and a CommonJS preload in the real process, which report every
 * module they see.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

/**
 * A CommonJS preload that reports every file the process requires, and the JavaScript files it
 * reads (the executable compiles its one bundle from the file's text, with its code cache).
 */
function recordingPreload(): string {
  const dir = mkdtempSync(join(tmpdir(), "lazy-"));
  const preload = join(dir, "record.cjs");
  writeFileSync(
    preload,
    `const Module = require("node:module");\nconst resolve = Module._resolveFilename;\n` +
      `Module._resolveFilename = function (request, ...rest) { const f = resolve.call(this, request, ...rest); if (!Module.isBuiltin(request)) process.stderr.write("required " + f + "\\n"); return f; };\n` +
      `const fs = require("node:fs");\nconst read = fs.readFileSync;\n` +
      `fs.readFileSync = function (file, ...rest) { if (/\\.c?js$/.test(String(file))) process.stderr.write("required " + file + "\\n"); return read.call(this, file, ...rest); };\n`,
  );
  return preload;
}

test("a SQLite prosodyctl command loads neither the PostgreSQL client nor the JSON schema compiler", async () => {
  const { config } = tempConfig(`data_path = "$DIR/data"
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api" }
`);
  const r = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com", "k"], {
    env: { NODE_OPTIONS: `--require=${recordingPreload()} --import=${HOOK}` },
  });
  assert.is(r.code, 0, r.stderr);
  const resolved = r.stderr.split("\n").filter((l) => l.startsWith("resolved ")).map((l) => l.slice(9));
  const required = r.stderr.split("\n").filter((l) => l.startsWith("required ")).map((l) => l.slice(9));
  assert.ok(resolved.includes("sql.js"), `the hook sees the packages loaded (${resolved.join(", ")})`);
  assert.not.ok(resolved.includes("pg"), `pg was loaded: ${resolved.join(", ")}`);
  // ajv (~50 ms to load) comes with "prosody-ts/util", which every plugin imports, but only a
  // plugin that makes a JSON API router needs it (src/http/json-api.ts).
  assert.ok(resolved.includes("prosody-ts/util"), `the plugins' helpers were loaded (${resolved.join(", ")})`);
  const ajv = [...resolved, ...required].filter((f) => /(^|\/)ajv(\/|$)/.test(f));
  assert.equal(ajv, [], "ajv was loaded");
});

test("help, --version, a usage error and about load one CommonJS file and no ES module, so no sql.js", async () => {
  const preload = recordingPreload();
  const { config } = tempConfig(`data_path = "$DIR/data"\nstorage = "sql"\nVirtualHost "example.com"\nmodules_enabled = { "invites" }\n`);
  for (const args of [["--help"], [], ["--version"], ["--no-such-option"], ["--config", "/nonexistent.cfg.lua", "--help"], ["--config", config, "about"]]) {
    const r = await prosodyctl(args, { env: { NODE_OPTIONS: `--require=${preload} --import=${HOOK}` } });
    const required = r.stderr.split("\n").filter((l) => l.startsWith("required ")).map((l) => l.slice(9));
    const resolved = r.stderr.split("\n").filter((l) => l.startsWith("resolved ")).map((l) => l.slice(9));
    assert.ok(required.some((f) => f.endsWith("/dist/cli-fast.cjs")), `${args.join(" ")}: the preload sees what is loaded (${required.join(", ")})`);
    // (With hooks registered, Node resolves the executable itself through the ES module loader.)
    assert.equal(resolved.filter((u) => !u.endsWith("/prosodyctl-shim/prosodyctl")), [], `${args.join(" ")}: no ES module is loaded`);
    assert.not.ok(required.some((f) => f.includes("sql.js") || f.includes("sql-wasm")), `${args.join(" ")} loaded sql.js: ${required.join(", ")}`);
    assert.ok(r.stdout.length > 0, "it answered");
  }
});

test.run();
