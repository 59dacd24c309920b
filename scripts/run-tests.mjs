#!/usr/bin/env node
// Runs every test suite: builds once, then each test/**/*.test.ts file in its own node process
// (uvu imports all files into one process otherwise, and module state would leak between them).
// Ends with one line "N passed, N failed, N skipped" summing every file (.ci/run greps its start);
// a test that skips says why (test/helpers/skip.ts), and every reason is listed above that line;
// a test that asserts nothing counts as failed (scripts/assert-audit/).
// Usage: node scripts/run-tests.mjs [substring-filter ...]
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { countFile } from "./test-counts.mjs";

const root = new URL("..", import.meta.url).pathname;
const filters = process.argv.slice(2);

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== "fixtures" && name !== "helpers") out.push(...findTests(p));
    } else if (name.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

// Some suites compare with real Prosody (its config files, its Lua): install it from apt when we
// can (root with apt-get); otherwise those suites report their tests skipped, with the reason.
function ensureSystemPackages() {
  const wanted = ["prosody", "prosody-modules", "lua-dbi-sqlite3", "lua-dbi-postgresql", "postgresql", "lua-unbound", "sqlite3", "chromium", "openssl", "python3", "python3-prometheus-client"];
  const missing = wanted.filter((p) => spawnSync("dpkg", ["-s", p], { stdio: "ignore" }).status !== 0);
  if (!missing.length) return;
  const canApt = process.getuid?.() === 0 && spawnSync("sh", ["-c", "command -v apt-get"], { stdio: "ignore" }).status === 0;
  if (!canApt) {
    console.log(`note: system packages missing (${missing.join(", ")}); suites that need them will skip`);
    return;
  }
  console.log(`installing system packages for the test suites: ${missing.join(" ")}`);
  const r = spawnSync(
    "sh",
    ["-c", `(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing.join(" ")}) >/tmp/run-tests-apt.log 2>&1`],
    { stdio: "inherit", timeout: 600_000 },
  );
  if (r.status !== 0) console.log("note: apt-get failed (see /tmp/run-tests-apt.log); suites that need these packages will skip");
  // The packages start a system Prosody and PostgreSQL; our tests run private instances only.
  spawnSync("sh", ["-c", "(systemctl stop prosody || service prosody stop) >/dev/null 2>&1"], { stdio: "ignore" });
  if (missing.includes("postgresql")) spawnSync("sh", ["-c", "(systemctl stop postgresql || service postgresql stop) >/dev/null 2>&1"], { stdio: "ignore" });
}
if (process.env.SKIP_SYSTEM_PACKAGES !== "1") ensureSystemPackages();

const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
if (build.status !== 0) {
  console.log("build failed");
  console.log("0 passed, 1 failed, 0 skipped");
  process.exit(1);
}

const files = findTests(join(root, "test")).filter((f) => !filters.length || filters.some((s) => f.includes(s)));
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
const skips = [];
// Structure (issue 12): no source file over 500 lines, no import cycle among src/ files.
if (spawnSync(process.execPath, [join(root, "scripts/check-structure.mjs")], { stdio: "inherit" }).status !== 0) failed++;
// Counts each test's assertions: a test that checks nothing fails (scripts/assert-audit/).
const AUDIT = join(root, "scripts/assert-audit/register.mjs");

function runFile(file) {
  return new Promise((resolveRun) => {
    const started = Date.now();
    const child = spawn(process.execPath, ["--import", "tsx", "--import", AUDIT, file], {
      cwd: root,
      // Tests run in temporary directories and must not pick up this machine's
      // /etc/prosody/prosody.cfg.lua; a test about the system config sets its own path.
      env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1", PROSODY_TS_SYSTEM_CONFIG: process.env.PROSODY_TS_SYSTEM_CONFIG ?? "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    // A suite that hangs must not hang CI: 5 minutes per file at most.
    const timer = setTimeout(() => {
      out += "\n[run-tests] timed out after 300 s, killed\n";
      child.kill("SIGKILL");
    }, 300_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolveRun({ code, out: out.replace(/\x1b\[[0-9;]*m/g, ""), ms: Date.now() - started });
    });
  });
}

for (const file of files) {
  const rel = relative(root, file);
  const { code, out, ms } = await runFile(file);
  const c = countFile(out, code);
  passed += c.passed;
  failed += c.failed;
  skipped += c.skipped;
  const status = c.failed ? "FAIL" : "ok  ";
  const counts = c.crashed ? "crashed" : `${c.passed} passed${c.failed ? `, ${c.failed} failed` : ""}${c.skipped ? `, ${c.skipped} skipped` : ""}`;
  console.log(`${status} ${rel} (${counts}, ${(ms / 1000).toFixed(1)}s)`);
  const own = `${basename(rel)} › `; // the suite name of a file's default suite: already said by rel
  for (const reason of c.reasons) skips.push(`${rel}: ${reason.startsWith(own) ? reason.slice(own.length) : reason}`);
  for (const name of c.empty) console.log(`     asserted nothing: ${name}`);
  if (c.failed) failures.push({ rel, out });
}

for (const { rel, out } of failures) {
  console.log(`\n===== output of failed suite ${rel} =====\n${out.trimEnd()}\n`);
}
if (skips.length) console.log(`\nskipped:\n${skips.map((s) => `  ${s}`).join("\n")}\n`);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed ? 1 : 0);
