#!/usr/bin/env node
// Runs every test suite: builds once, then each test/**/*.test.ts file in its own node process
// (uvu imports all files into one process otherwise, and module state would leak between them).
// Ends with one line "N passed, N failed, N skipped" summing every file.
// Usage: node scripts/run-tests.mjs [substring-filter ...]
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

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
// can (root with apt-get); otherwise those suites print "SKIP: <reason>" and pass over it.
function ensureSystemPackages() {
  const wanted = ["prosody", "prosody-modules", "lua-dbi-sqlite3", "sqlite3", "chromium"];
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
  // The package starts a system Prosody; our tests run private instances only.
  spawnSync("sh", ["-c", "(systemctl stop prosody || service prosody stop) >/dev/null 2>&1"], { stdio: "ignore" });
}
if (process.env.SKIP_SYSTEM_PACKAGES !== "1") ensureSystemPackages();

const build = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
if (build.status !== 0) {
  console.log("build failed");
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const files = findTests(join(root, "test")).filter((f) => !filters.length || filters.some((s) => f.includes(s)));
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
const count = (text, label) => {
  const m = text.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m"));
  return m ? Number(m[1]) : undefined;
};

function runFile(file) {
  return new Promise((resolveRun) => {
    const started = Date.now();
    const child = spawn(process.execPath, ["--import", "tsx", file], {
      cwd: root,
      env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" },
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
      resolveRun({ code, out: stripAnsi(out), ms: Date.now() - started });
    });
  });
}

for (const file of files) {
  const rel = relative(root, file);
  const { code, out, ms } = await runFile(file);
  const total = count(out, "Total");
  const ok = count(out, "Passed");
  const skip = count(out, "Skipped") ?? 0;
  let fileFailed = 0;
  if (total === undefined || ok === undefined) {
    fileFailed = 1; // crashed before uvu could report
  } else {
    passed += ok;
    skipped += skip;
    fileFailed = Math.max(total - ok - skip, code === 0 ? 0 : 1);
  }
  failed += fileFailed;
  const status = fileFailed ? "FAIL" : "ok  ";
  console.log(`${status} ${rel} (${ok ?? 0}/${total ?? "?"} passed${skip ? `, ${skip} skipped` : ""}, ${(ms / 1000).toFixed(1)}s)`);
  for (const line of out.split("\n")) if (/^SKIP\b|^\s*SKIP:/.test(line)) console.log(`     ${line.trim()}`);
  if (fileFailed) failures.push({ rel, out });
}

for (const { rel, out } of failures) {
  console.log(`\n===== output of failed suite ${rel} =====\n${out.trimEnd()}\n`);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed ? 1 : 0);
