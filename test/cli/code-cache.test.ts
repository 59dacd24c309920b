/**
 * prosodyctl's V8 code cache (prosodyctl-shim/prosodyctl, made by the build in
 * scripts/code-cache.mjs): the build makes one that this node accepts, and a cache that does not
 * match (damaged, another node, removed) only costs the compile it would have saved, never the
 * command. PROSODY_TS_CODE_CACHE=report makes the executable say which it was.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { PROSODYCTL, tempConfig } from "../helpers/cli.js";

const DIST = resolve(import.meta.dirname, "../../dist");
const report = { PROSODY_TS_CODE_CACHE: "report", NODE_OPTIONS: "" };

/** The executable run as an admin runs it (its first line's node options: V8 checks them). */
const asTyped = (args: string[]) => {
  const r = spawnSync(PROSODYCTL, args, { encoding: "utf8", env: { ...process.env, PROSODY_TS_SYSTEM_CONFIG: "", ...report } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

test("the build's cache is used, on help and on about", async () => {
  const help = asTyped(["--help"]);
  assert.is(help.code, 0);
  assert.match(help.stdout, "Usage:");
  assert.is(help.stderr, "prosodyctl: code cache used\n");
  // No server serves this config: the command runs here, after the same first steps.
  const { config } = tempConfig(`data_path = "$DIR/data"\nVirtualHost "example.com"\nmodules_enabled = { "invites" }\n`);
  const about = asTyped(["--config", config, "about"]);
  assert.is(about.code, 0, about.stderr);
  assert.is(about.stderr, "prosodyctl: code cache used\n");
});

test("a damaged, foreign or missing cache is not used, and the command answers the same", async () => {
  // A copy of the executable and its bundle, so the cache beside it can be spoiled safely.
  const dir = mkdtempSync(join(tmpdir(), "code-cache-"));
  try {
    mkdirSync(join(dir, "prosodyctl-shim"));
    mkdirSync(join(dir, "dist"));
    copyFileSync(PROSODYCTL, join(dir, "prosodyctl-shim", "prosodyctl"));
    copyFileSync(join(PROSODYCTL, "..", "package.json"), join(dir, "prosodyctl-shim", "package.json"));
    copyFileSync(join(DIST, "cli-fast.cjs"), join(dir, "dist", "cli-fast.cjs"));
    // (The bundle finds the package's root by its package.json.)
    copyFileSync(join(DIST, "..", "package.json"), join(dir, "package.json"));
    const ctl = join(dir, "prosodyctl-shim", "prosodyctl");
    const run = (args: string[], env: Record<string, string>) =>
      spawnSync(process.execPath, [ctl, ...args], { encoding: "utf8", env: { ...process.env, ...report, ...env } });
    // Help names the command as it was run: this copy.
    const expected = run(["--help"], { PROSODY_TS_CODE_CACHE: "off" }).stdout;
    assert.match(expected, "Usage:");

    let r = run(["--help"], {});
    assert.equal([r.stdout, r.stderr, r.status], [expected, "prosodyctl: code cache absent\n", 0]);

    writeFileSync(join(dir, "dist", "cli-fast.cjs.cache"), Buffer.alloc(4096, 7));
    r = run(["--help"], {});
    assert.equal([r.stdout, r.stderr, r.status], [expected, "prosodyctl: code cache rejected\n", 0], "damaged");

    // The real cache, but for a different source: V8 refuses it.
    copyFileSync(join(DIST, "cli-fast.cjs.cache"), join(dir, "dist", "cli-fast.cjs.cache"));
    writeFileSync(join(dir, "dist", "cli-fast.cjs"), `// edited\n${readFileSync(join(DIST, "cli-fast.cjs"), "utf8")}`);
    r = run(["--help"], {});
    assert.equal([r.stdout, r.stderr, r.status], [expected, "prosodyctl: code cache rejected\n", 0], "another source");

    // A bundle of another shape (not the function the build writes): a clear error, no stack trace.
    const bundle = readFileSync(join(dir, "dist", "cli-fast.cjs"), "utf8");
    for (const text of ["module.exports = 1;\n", "'an older build';\n", "(function ( {\n"]) {
      writeFileSync(join(dir, "dist", "cli-fast.cjs"), text);
      r = run(["--help"], { PROSODY_TS_CODE_CACHE: "" });
      assert.is(r.status, 1, text);
      assert.match(r.stderr, /^prosodyctl: \S+\/dist\/cli-fast\.cjs is not what this executable runs; run "npm run build" in \S+\n$/);
    }
    writeFileSync(join(dir, "dist", "cli-fast.cjs"), bundle);

    // What the build does: a cache written by a run is used by the next.
    const out = join(dir, "made.cache");
    r = run(["--help"], { PROSODY_TS_CODE_CACHE: `write:${out}` });
    assert.is(r.status, 0, r.stderr);
    copyFileSync(out, join(dir, "dist", "cli-fast.cjs.cache"));
    r = run(["--help"], {});
    assert.equal([r.stdout, r.stderr, r.status], [expected, "prosodyctl: code cache used\n", 0], "made by a run");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
