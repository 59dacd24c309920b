/** prosodyctl dispatch, in-process through main() (the spawned binary is covered in binary.test.ts). */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { main } from "../../src/cli/prosodyctl.js";
import { pluginDir } from "../helpers/plugins.js";

const PLUGINS = pluginDir({
  tool: `
    export default function (module) { module.exports.bodyHost = module.host; }
    export async function command(args, ctx) {
      const [sub, ...rest] = args;
      switch (sub) {
        case "code": return Number(rest[0]);
        case "string": return "a string result";
        case "throw": throw new Error("it broke");
        case "nothing": return undefined;
        case "echo": ctx.print(JSON.stringify({ args, host: ctx.module.host, global: ctx.module.global, body: ctx.module.exports.bodyHost })); return 0;
        case "opt": ctx.print(ctx.module.context(rest[0]).getOption("colour")); return 0;
      }
      ctx.print("unknown"); return 3;
    }`,
  silent: `export default function () {}`,
  luastyle: `
    export default function (module) {
      const where = module.host;
      module.command = (args) => "body ran on " + where + "; args " + args.join(",");
    }`,
  badsyntax: `export default function ( {`,
});

const DIR = mkdtempSync(join(tmpdir(), "prosodyctl-test-"));
const CONFIG = join(DIR, "prosody.cfg.lua");
writeFileSync(
  CONFIG,
  `plugin_paths = { ${JSON.stringify(PLUGINS)} }\ndata_path = ${JSON.stringify(join(DIR, "data"))}\nstorage = "memory"\ncolour = "blue"\nVirtualHost "example.com"\ncolour = "red"\n`,
);

async function run(argv: string[], env: NodeJS.ProcessEnv = {}, cwd = DIR) {
  let out = "";
  let err = "";
  const code = await main(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t), env, cwd });
  return { code, out, err };
}

test("no command, unknown command and --help print the help listing and exit 0", async () => {
  for (const argv of [[], ["frobnicate"], ["--help"], ["-h"]]) {
    const r = await run(["--config", CONFIG, ...argv]);
    assert.is(r.code, 0, argv.join(" "));
    assert.match(r.out, /^prosodyctl - Manage a Prosody server\n\nUsage: prosodyctl COMMAND \[OPTIONS\]\n\nWhere COMMAND may be one of:/);
  }
});

test("an unknown single-letter option is refused with Prosody's message", async () => {
  const r = await run(["-x", "mod_tool", "code", "0"]);
  assert.is(r.out, "Unknown command-line option: -x\n");
  assert.is(r.code, 1);
});

test("mod_<name>: a number result is the exit code", async () => {
  for (const n of [0, 2, 7]) {
    const r = await run(["--config", CONFIG, "mod_tool", "code", String(n)]);
    assert.is(r.code, n);
  }
});

test("mod_<name>: a string result is printed, exit 0; no result exits 0 silently", async () => {
  const r = await run(["--config", CONFIG, "mod_tool", "string"]);
  assert.equal([r.out, r.code], ["a string result\n", 0]);
  const r2 = await run(["--config", CONFIG, "mod_tool", "nothing"]);
  assert.equal([r2.out, r2.code], ["", 0]);
});

test("mod_<name>: a thrown error gives 'Failed to execute command: Error: …', exit 1", async () => {
  const r = await run(["--config", CONFIG, "mod_tool", "throw"]);
  assert.is(r.out, "Failed to execute command: Error: it broke\n");
  assert.is(r.code, 1);
});

test("mod_<name>: a module for the global pseudo-host, its body not run (it exports command); later --flags pass through untouched", async () => {
  const r = await run(["--config=" + CONFIG, "-v", "mod_tool", "echo", "--admin", "-g", "x", "--config", "y"]);
  assert.is(r.code, 0);
  // Issue 12: the body (what the module does on a host) no longer runs for a command; this test
  // pinned `body: "*"` before.
  assert.equal(JSON.parse(r.out), {
    args: ["echo", "--admin", "-g", "x", "--config", "y"],
    host: "*",
    global: true,
  });
});

test("mod_<name>: a module without a command export is loaded on \"*\" body included, as in Prosody (module.command set there)", async () => {
  const r = await run(["--config", CONFIG, "mod_luastyle", "a", "b"]);
  assert.equal([r.out, r.code], ["body ran on *; args a,b\n", 0]);
});

test("mod_<name>: the command reads host options through context(host)", async () => {
  const r = await run(["--config", CONFIG, "mod_tool", "opt", "example.com"]);
  assert.is(r.out, "red\n");
  const g = await run(["--config", CONFIG, "mod_tool", "opt", "unknown.example"]);
  assert.is(g.out, "blue\n");
});

test("a module without commands, one that can't be found, one that fails to load", async () => {
  const r = await run(["--config", CONFIG, "mod_silent"]);
  assert.equal([r.out, r.code], ["Fail: mod_silent does not support any commands\n", 1]);
  const r2 = await run(["--config", CONFIG, "mod_nope"]);
  assert.match(r2.out, /^Failed to load module 'nope': /);
  assert.is(r2.code, 1);
  const r3 = await run(["--config", CONFIG, "--quiet", "mod_badsyntax"]);
  assert.match(r3.out, /^Failed to load module 'badsyntax': /);
  assert.is(r3.code, 1);
});

test("config is found from PROSODY_CONFIG and from ./prosody.cfg.lua", async () => {
  const viaEnv = await run(["mod_tool", "opt", "example.com"], { PROSODY_CONFIG: CONFIG }, tmpdir());
  assert.is(viaEnv.out, "red\n");
  const viaCwd = await run(["mod_tool", "opt", "example.com"], {}, DIR);
  assert.is(viaCwd.out, "red\n");
});

test("a broken config file is one clear message with file:line, exit 1", async () => {
  const bad = join(DIR, "bad.cfg.lua");
  writeFileSync(bad, 'VirtualHost "ok.example"\nthis is not lua\n');
  const r = await run(["--config", bad, "mod_tool", "code", "0"]);
  assert.is(r.code, 1);
  assert.match(r.out, `${bad}:2:`);
  assert.not.match(r.out, /\n\s+at /, "no stack trace");
  const missing = await run(["--config", join(DIR, "missing.cfg.lua"), "mod_tool", "code", "0"]);
  assert.is(missing.code, 1);
  assert.match(missing.out, "missing.cfg.lua");
});

test.run();
