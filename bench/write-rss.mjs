#!/usr/bin/env node
// Benchmark (prints figures; not a test): our server's RSS while and after clients write through the
// API: `--conns` connections POSTing /invites_api for `--seconds` onto a store prefilled with
// `--rows` invites, the RSS sampled meanwhile (peak) and `--after` ms later; `--runs` times, each on
// a fresh server and store. `--trace` also prints, every second, where the resident memory is
// (/proc/PID/smaps: [heap], big anonymous mappings such as malloc arenas and WebAssembly memories,
// other anonymous, file-backed).
//
// Usage: npm run build && node bench/write-rss.mjs [--rows 100000] [--storage sql|internal]
//          [--seconds 10] [--conns 16] [--after 5000] [--runs 3] [--writes N] [--trace]
// --writes N: at most N POSTs (about: split over wrk's 2 threads), then the connections GET the
// API's OpenAPI document for the rest of the burst, so the store ends at --rows + N invites.
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, opt as optOf, preflight, prefill, sleep, waitHttp, SERVER_NODE_ARGS } from "./_common.mjs";
import { benchConfig, benchKey, rssMb, rssSplit, writeBurst } from "./_burst.mjs";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const opt = (name, dflt) => optOf(args, name, dflt);
const ROWS = Number(opt("rows", 100000));
const STORAGE = String(opt("storage", "sql"));
const SECONDS = Number(opt("seconds", 10));
const CONNS = Number(opt("conns", 16));
const AFTER = Number(opt("after", 5000));
const RUNS = Number(opt("runs", 3));
const WRITES = opt("writes", undefined) === undefined ? undefined : Number(opt("writes"));
const TRACE = args.includes("--trace");
preflight(root, ["wrk", ...(STORAGE === "sql" ? ["sqlite3"] : [])]);
const CTL = join(root, "prosodyctl-shim", "prosodyctl");

let server;
let dir;
const cleanup = () => {
  if (server && server.exitCode === null) server.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
};
process.on("exit", cleanup);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

const f = (n) => (Number.isFinite(n) ? n.toFixed(0) : "n/a");
const split = (pid) => {
  const s = rssSplit(pid);
  return s ? `heap ${f(s.heap)} bigAnon ${f(s.bigAnon)} anon ${f(s.anon)} file ${f(s.file)}` : "";
};
/** --trace: the server's log is kept (its directory is removed). */
const copyLog = (run) => {
  const to = join(tmpdir(), `bench-write-rss-server-${process.pid}-${run}.log`);
  copyFileSync(join(dir, "server.log"), to);
  return to;
};
/** Invites in the DB file (read with sqlite3; the journal was folded into it 2 s after the burst). */
function storedInvites(file) {
  try {
    return Number(execFileSync("sqlite3", [file, "SELECT count(*) FROM prosody WHERE store = 'invite_token';"]).toString().trim());
  } catch {
    return NaN;
  }
}
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

console.log(`server RSS under API writes: ${ROWS} stored (${STORAGE}), ${CONNS} connections POST /invites_api for ${SECONDS} s, RSS ${AFTER} ms later; load ${load()}`);
const rows = [];
for (let run = 1; run <= RUNS; run++) {
  dir = mkdtempSync(join(tmpdir(), "bench-write-rss-"));
  const port = await freePort();
  const cfg = join(dir, "prosody.cfg.lua");
  writeFileSync(cfg, benchConfig(dir, port, STORAGE));
  prefill(dir, STORAGE, ROWS);
  const ctl = [process.execPath, CTL, "--config", cfg];
  const key = benchKey(ctl, dir);
  const out = openSync(join(dir, "server.log"), "a");
  server = spawn(process.execPath, [...SERVER_NODE_ARGS, CTL, "--config", cfg, "start"], { cwd: dir, stdio: ["ignore", out, out] });
  await waitHttp(port, 60000);
  await sleep(2000);
  const started = rssMb(server.pid);
  if (TRACE) console.log(`  run ${run} started: ${f(started)} MB (${split(server.pid)})`);
  const tracer = TRACE ? setInterval(() => console.log(`    ${f(rssMb(server.pid))} MB (${split(server.pid)})`), 1000) : undefined;
  const r = await writeBurst({ pid: server.pid, port, key, conns: CONNS, seconds: SECONDS, after: AFTER, writes: WRITES });
  const stored = STORAGE === "sql" ? storedInvites(join(dir, "data", "prosody.sqlite")) : NaN;
  clearInterval(tracer);
  if (TRACE) console.log(`  run ${run} after: ${f(r.after)} MB (${split(server.pid)})`);
  rows.push({ started, ...r });
  console.log(`  run ${run}: ${f(started)} MB after start; ${r.requests} requests answered (${r.non2xx} non-2xx), ${Number.isFinite(stored) ? stored : "?"} invites stored after; peak ${f(r.peak)} MB during; ${f(r.after)} MB ${AFTER} ms after (peak meanwhile ${f(r.afterPeak)} MB); load ${load()}`);
  server.kill("SIGTERM");
  await Promise.race([new Promise((res) => server.on("exit", res)), sleep(15000)]);
  if (TRACE) console.log(`  server log: ${copyLog(run)}`);
  cleanup();
  server = undefined;
  dir = undefined;
}
const worst = Math.max(...rows.map((r) => Math.max(r.peak, r.after, r.afterPeak)));
console.log(`worst RSS over ${RUNS} runs (during and after): ${f(worst)} MB${ROWS >= 100000 ? `; goal ≤ 160 MB: ${worst <= 160 ? "met" : "NOT met"}` : ""}`);
if (existsSync(dir ?? "")) rmSync(dir, { recursive: true, force: true });
