#!/usr/bin/env node
// Benchmark (prints figures; not a test): whole-process wall time and peak RSS of prosodyctl
// commands at several store sizes, ours without a server (in-process, "cold") and with our server
// running on the same config (the command then runs in the server over the admin socket), beside
// real Prosody 0.12's prosodyctl on its own copy of the same store, when installed. Also our
// server's RSS after start and after 5 s idle, and `node -e 0` / `--help` / `about` for reference.
// Our prosodyctl runs as an admin runs it: the executable itself (its `#!` line). Where
// NODE_EXTRA_CA_CERTS is set, node -e 0 is measured with and without it, and the commands through
// the server also as `node prosodyctl-shim/prosodyctl …`, which loads it at start (see CA_VAR below).
// Then, at each size, the server's RSS during and 5 s after a burst of API writes: --burst-conns
// connections (default 16) POSTing /invites_api for --burst-seconds (default 10; 0 skips it; needs
// wrk, installed automatically when run as root). The burst adds invites: the store is bigger after.
// Wall time: measured here around each process (median of --runs); peak RSS: GNU time's %M
// (apt package `time`, installed automatically when run as root).
//
// Usage: npm run build && node bench/cli.mjs [--rows 0,10000,100000] [--storage sql|internal]
//          [--runs 10] [--no-prosody] [--burst-seconds 10] [--burst-conns 16]
// Everything stays on 127.0.0.1; temporary directories are removed and servers stopped at the end,
// on error and on Ctrl-C.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureApt, freePort, have, prefill, sleep, opt as optOf, preflight, SERVER_NODE_ARGS } from "./_common.mjs";
import { benchConfig, benchKey, rssMb, writeBurst } from "./_burst.mjs";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const opt = (name, dflt) => optOf(args, name, dflt);
const ROWS = String(opt("rows", "0,10000,100000")).split(",").map(Number);
const STORAGE = String(opt("storage", "sql"));
const RUNS = Math.max(1, Number(opt("runs", 10)));
const BURST_SECONDS = Number(opt("burst-seconds", 10));
const BURST_CONNS = Number(opt("burst-conns", 16));
if (STORAGE !== "sql" && STORAGE !== "internal") {
  console.error("bench: --storage is sql or internal");
  process.exit(2);
}
const CTL = join(root, "prosodyctl-shim", "prosodyctl");
preflight(root);
const haveTime = ensureApt("/usr/bin/time", "time") && existsSync("/usr/bin/time");
if (STORAGE === "sql" && !ensureApt("sqlite3", "sqlite3")) {
  console.error("bench: sqlite3 is needed to prefill the store (apt install sqlite3)");
  process.exit(1);
}
const haveWrk = BURST_SECONDS > 0 && ensureApt("wrk", "wrk");
const haveProsody = !args.includes("--no-prosody") && have("prosody") && have("prosodyctl") && process.getuid?.() === 0;

// --- cleanup: every temp dir and server, also on error and Ctrl-C ---
const dirs = new Set();
const servers = new Set();
function cleanup() {
  for (const s of servers) if (s.exitCode === null && s.signalCode === null) try { s.kill("SIGKILL"); } catch {}
  servers.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => { cleanup(); process.exit(130); });
const tempDir = (prefix) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.add(d);
  return d;
};

// --- one measured process ---
/** Runs argv once: { s: wall seconds, kb: peak RSS in kB (GNU time) or NaN, ok, err }. */
function runOnce(argv, opts = {}) {
  const tfile = join(tmpdir(), `bench-cli-time-${process.pid}`);
  const full = haveTime ? ["/usr/bin/time", "-f", "%M", "-o", tfile, ...argv] : argv;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full.slice(1), { stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 << 20, ...opts });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  let kb = NaN;
  if (haveTime) {
    try {
      kb = Number(readFileSync(tfile, "utf8").trim().split("\n").pop());
      rmSync(tfile, { force: true });
    } catch {}
  }
  const ok = r.status === 0;
  return { s, kb, ok, err: ok ? "" : `exit ${r.status}: ${String(r.stderr).trim().split("\n").slice(-1)[0] ?? ""}` };
}
const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
/**
 * Measures several commands, round-robin (run i of every command, then run i + 1), so a busy
 * moment of the machine spreads over all of them. cmds: { name: argv | [argv, opts] }.
 */
function measureAll(cmds) {
  const acc = Object.fromEntries(Object.keys(cmds).map((k) => [k, { s: [], kb: [], errors: [] }]));
  for (let i = 0; i < RUNS; i++)
    for (const [k, c] of Object.entries(cmds)) {
      const [argv, opts] = Array.isArray(c[0]) ? c : [c, {}];
      const r = runOnce(argv, opts);
      if (r.ok) {
        acc[k].s.push(r.s);
        acc[k].kb.push(r.kb);
      } else acc[k].errors.push(r.err);
    }
  return Object.fromEntries(Object.entries(acc).map(([k, a]) => [k, { s: median(a.s), mb: median(a.kb) / 1024, n: a.s.length, errors: a.errors }]));
}

// --- our setup ---
async function ourSetup(rows) {
  const dir = tempDir("bench-cli-ours-");
  const port = await freePort();
  const cfg = join(dir, "prosody.cfg.lua");
  writeFileSync(cfg, benchConfig(dir, port, STORAGE));
  prefill(dir, STORAGE, rows);
  const ctl = (...a) => [CTL, "--config", cfg, ...a];
  return {
    dir,
    cfg,
    port,
    cmds: {
      "mod_invites_api create": [ctl("mod_invites_api", "create", "example.com", "bench"), { cwd: dir }],
      "mod_invites_api list": [ctl("mod_invites_api", "list", "example.com"), { cwd: dir }],
      "mod_invites generate": [ctl("mod_invites", "generate", "example.com"), { cwd: dir }],
    },
  };
}

async function startOurs(setup) {
  const log = join(setup.dir, "server.log");
  const out = openSync(log, "a");
  const server = spawn(process.execPath, [...SERVER_NODE_ARGS, CTL, "--config", setup.cfg, "start"], { cwd: setup.dir, stdio: ["ignore", out, out] });
  servers.add(server);
  const sock = join(setup.dir, "data", "prosody-ts.sock");
  const until = Date.now() + 60000;
  while (!existsSync(sock)) {
    if (server.exitCode !== null) throw new Error(`our server exited (${server.exitCode}): ${readFileSync(log, "utf8").slice(-300)}`);
    if (Date.now() > until) throw new Error("our server's admin socket did not appear in 60 s");
    await sleep(50);
  }
  const started = rssMb(server.pid);
  await sleep(5000);
  const idle = rssMb(server.pid);
  return { server, log, started, idle };
}

async function stopOurs(server) {
  if (server.exitCode === null) {
    server.kill("SIGTERM");
    await Promise.race([new Promise((r) => server.on("exit", r)), sleep(15000)]);
    if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
  }
  servers.delete(server);
}

// --- real Prosody's prosodyctl, on its own copy of the store (run as root: it drops to prosody) ---
function prosodySetup(rows) {
  const dir = tempDir("bench-cli-prosody-");
  const cfg = join(dir, "prosody.cfg.lua");
  mkdirSync(join(dir, "certs"), { recursive: true });
  writeFileSync(
    cfg,
    `pidfile = "${dir}/prosody.pid"\ndata_path = "${dir}/data"\ncertificates = "${dir}/certs"\nlog = { warn = "${dir}/prosody.log" }\n` +
      `http_ports = {}\nhttps_ports = {}\nc2s_ports = {}\ns2s_ports = {}\n` +
      `storage = "${STORAGE}"\nsql = { driver = "SQLite3", database = "prosody.sqlite" }\nmodules_enabled = { "http", "invites", "invites_api" }\nVirtualHost "example.com"\n`,
  );
  prefill(dir, STORAGE, rows);
  const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
  const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
  execFileSync("chown", ["-R", `${uid}:${gid}`, dir]);
  const ctl = (...a) => ["prosodyctl", "--config", cfg, ...a];
  return {
    "mod_invites_api create": [ctl("mod_invites_api", "create", "example.com", "bench"), { cwd: dir }],
    "mod_invites_api list": [ctl("mod_invites_api", "list", "example.com"), { cwd: dir }],
  };
}

// --- the run ---
const load0 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const startedAt = new Date().toISOString();
const refDir = tempDir("bench-cli-ref-");
const refCfg = join(refDir, "prosody.cfg.lua");
writeFileSync(refCfg, `data_path = "${refDir}/data"\nVirtualHost "example.com"\n`);
mkdirSync(join(refDir, "data"));
// NODE_EXTRA_CA_CERTS makes node 20 build its TLS root store at every start, before any code runs
// (~40 ms here: 19 ms for node's own roots, 19 ms for a 144-certificate bundle). prosodyctl's
// executable starts node without it (src/util/extra-ca.ts). Where it is set (this machine sets it
// for its package proxy; a stock Debian does not), the commands through the server are also run
// as `node prosodyctl-shim/prosodyctl …`, with the variable loaded at start, for comparison.
const CA_VAR = "NODE_EXTRA_CA_CERTS";
const noCaEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== CA_VAR));
const caSet = process.env[CA_VAR] !== undefined;
const NO_CA = " (as node CTL)";
const ref = measureAll({
  "node -e 0": [process.execPath, "-e", "0"],
  ...(caSet ? { [`node -e 0 (no ${CA_VAR})`]: [[process.execPath, "-e", "0"], { env: noCaEnv }] } : {}),
  "prosodyctl --help": [[CTL, "--help"], { cwd: refDir }],
  "prosodyctl about": [[CTL, "--config", refCfg, "about"], { cwd: refDir }],
});

const sizes = [];
for (const rows of ROWS) {
  process.stderr.write(`[bench] ${rows} stored…\n`);
  const ours = await ourSetup(rows);
  const cold = measureAll({ ...ours.cmds, ...(haveProsody ? Object.fromEntries(Object.entries(prosodySetup(rows)).map(([k, v]) => [`prosody ${k}`, v])) : {}) });
  const srv = await startOurs(ours);
  const via = measureAll({
    ...ours.cmds,
    ...(caSet ? Object.fromEntries(Object.entries(ours.cmds).map(([k, [argv, o]]) => [`${k}${NO_CA}`, [[process.execPath, ...argv], o]])) : {}),
  });
  const afterCmds = rssMb(srv.server.pid);
  await sleep(5000);
  const afterCmdsIdle = rssMb(srv.server.pid);
  // Counted before the burst's own prosodyctl command (its API key) runs in the server too.
  const viaSocket = (readFileSync(srv.log, "utf8").match(/Running for prosodyctl/g) ?? []).length;
  let burst;
  if (haveWrk) {
    process.stderr.write(`[bench] ${rows} stored: ${BURST_SECONDS} s write burst…\n`);
    const key = benchKey([CTL, "--config", ours.cfg], ours.dir);
    burst = await writeBurst({ pid: srv.server.pid, port: ours.port, key, conns: BURST_CONNS, seconds: BURST_SECONDS, after: 5000 });
  }
  await stopOurs(srv.server);
  sizes.push({ rows, cold, via, rss: { started: srv.started, idle: srv.idle, afterCmds, afterCmdsIdle }, viaSocket, burst });
}
const load1 = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
cleanup();

// --- the tables ---
const f = (n, d = 3) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
const cell = (x) => (!x ? "—" : x.n === 0 ? `failed (${x.errors[0]})` : `${f(x.s)} s ${f(x.mb, 0).padStart(4)} MB${x.errors.length ? ` (${x.errors.length} failed)` : ""}`);
const mark = (ok) => (ok === undefined ? "n/a" : ok ? "met" : "NOT met");
console.log(`\nprosodyctl whole-process figures, ${STORAGE === "sql" ? "SQLite" : "internal"} storage, median of ${RUNS} runs (${startedAt})`);
console.log(`time: wall seconds around the process; MB: peak RSS (${haveTime ? "GNU time %M" : "n/a: /usr/bin/time missing"}); load average before ${load0}, after ${load1}`);
console.log(`\nno store, for reference:`);
for (const [k, x] of Object.entries(ref)) console.log(`  ${k.padEnd(caSet ? 36 : 22)} ${cell(x)}`);
// Against node's start without the variable where it is set: the stricter of the two.
const bare = ref[`node -e 0 (no ${CA_VAR})`] ?? ref["node -e 0"];
const budget = bare.s + 0.04;
for (const k of ["prosodyctl --help", "prosodyctl about"])
  console.log(`  goal ${k} ≤ node -e 0${caSet ? ` (no ${CA_VAR})` : ""} + 40 ms (${f(budget)} s): ${mark(Number.isFinite(ref[k].s) ? ref[k].s <= budget : undefined)}`);

/** Our commands (the cold table also holds Prosody's). */
const ourNames = (s) => Object.keys(s.cold).filter((k) => !k.startsWith("prosody "));
const W = 24;
const C = 24;
for (const s of sizes) {
  console.log(`\n${s.rows} invites stored`);
  const viaNoCa = caSet ? ` ${"via, as node CTL".padEnd(C + 8)}` : "";
  console.log(`  ${"command".padEnd(W)} ${"ours cold".padEnd(C)} ${"ours via server".padEnd(C)}${viaNoCa} ${"Prosody 0.12".padEnd(C)} ${"cold/P".padStart(6)} ${"via/P".padStart(6)}`);
  for (const k of ourNames(s)) {
    const p = s.cold[`prosody ${k}`];
    const r = (x) => (p && p.n && x && x.n ? f(x.s / p.s, 1) + "x" : "—");
    const noCa = caSet ? ` ${cell(s.via[`${k}${NO_CA}`]).padEnd(C)} ${r(s.via[`${k}${NO_CA}`]).padStart(6)} ` : "";
    console.log(`  ${k.padEnd(W)} ${cell(s.cold[k]).padEnd(C)} ${cell(s.via[k]).padEnd(C)}${noCa} ${cell(p).padEnd(C)} ${r(s.cold[k]).padStart(6)} ${r(s.via[k]).padStart(6)}`);
  }
  console.log(`  server VmRSS: ${f(s.rss.started, 0)} MB after start, ${f(s.rss.idle, 0)} MB after 5 s idle, ${f(s.rss.afterCmds, 0)} MB after the commands above, ${f(s.rss.afterCmdsIdle, 0)} MB 5 s later`);
  if (s.burst)
    console.log(
      `  server VmRSS under API writes (${BURST_CONNS} connections POST /invites_api for ${BURST_SECONDS} s, ${s.burst.requests} invites created, ${s.burst.non2xx} refused): ` +
        `peak ${f(s.burst.peak, 0)} MB during, ${f(s.burst.after, 0)} MB 5 s after (peak ${f(s.burst.afterPeak, 0)} MB meanwhile)`,
    );
  console.log(`  commands the server ran for prosodyctl (its log): ${s.viaSocket} of ${RUNS * Object.keys(s.via).length}`);
  // The goal is for prosodyctl as typed (the executable); `node prosodyctl-shim/prosodyctl` is shown for comparison only.
  for (const k of Object.keys(s.via).filter((k) => !k.endsWith(NO_CA))) {
    const p = s.cold[`prosody ${k}`];
    if (!p || !p.n || !s.via[k].n) continue;
    console.log(`  goal via server ≤ Prosody × 2, ${k}: ${f(s.via[k].s)} s vs ${f(2 * p.s)} s: ${mark(s.via[k].s <= 2 * p.s)}`);
  }
  if (s.rows >= 100000) {
    for (const k of ourNames(s)) console.log(`  goal cold ≤ 0.5 s at 100k, ${k}: ${f(s.cold[k].s)} s: ${mark(s.cold[k].n ? s.cold[k].s <= 0.5 : undefined)}`);
    const rest = Math.max(s.rss.started, s.rss.idle);
    const worst = Math.max(rest, s.rss.afterCmds, s.rss.afterCmdsIdle);
    console.log(`  goal server RSS ≤ 160 MB at 100k, after start and idle: ${f(rest, 0)} MB: ${mark(Number.isFinite(rest) ? rest <= 160 : undefined)}`);
    console.log(`  goal server RSS ≤ 160 MB at 100k, also after serving the commands: ${f(worst, 0)} MB: ${mark(Number.isFinite(worst) ? worst <= 160 : undefined)}`);
    if (s.burst) {
      // The burst makes the store grow well past 100k, so these are not the 100k goal; the issue's
      // case (100k + 20k written through the API) is `bench/write-rss.mjs --writes 20000`.
      const during = s.burst.peak;
      const after = Math.max(s.burst.after, s.burst.afterPeak);
      const grown = `${Math.round((s.rows + s.burst.requests) / 1000)}k`;
      console.log(`  server RSS ≤ 160 MB while the burst grows the store to ~${grown} (beyond the 100k goal): during ${f(during, 0)} MB: ${mark(Number.isFinite(during) ? during <= 160 : undefined)}; in the 5 s after: ${f(after, 0)} MB: ${mark(Number.isFinite(after) ? after <= 160 : undefined)}`);
    }
  }
}
if (!haveProsody) console.log("\n(real Prosody not installed, not root, or --no-prosody: its column is empty)");
console.log("(Prosody 0.12's prosodyctl always runs in-process: its column is the same for both of ours. mod_invites generate: ours only.)");
