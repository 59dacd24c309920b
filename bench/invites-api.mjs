#!/usr/bin/env node
// Benchmark: invite creation over HTTP (GET /invites_api?key=…) on this host and, when it is
// installed, on real Prosody 0.12 with SQLite storage, on the same machine in the same run.
// Load tool: wrk (apt install wrk; installed automatically when run as root). Traffic stays on
// 127.0.0.1; every run is bounded by BENCH_SECONDS (default 5).
//
// Usage: npm run build && node bench/invites-api.mjs [--seconds N] [--warmup N] [--rows 0,100000]
//          [--storage sql,internal] [--no-prosody]
// Each server first gets --warmup seconds (default 2) of the same load at 16 connections, not
// measured (JIT and WebAssembly tier-up, first compaction); its invites count in "stored".
// Prints, per server and store size: requests/s and p50/p99 latency at 1 and 16 connections,
// and how many invites the store holds afterwards compared with the 201s wrk counted.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SECONDS = Number(opt("seconds", process.env.BENCH_SECONDS ?? 5));
const WARMUP = Number(opt("warmup", process.env.BENCH_WARMUP ?? 2));
const ROWS = String(opt("rows", "0,100000")).split(",").map(Number);
const STORAGES = String(opt("storage", "sql")).split(",");
const WITH_PROSODY = !args.includes("--no-prosody");
const isRoot = process.getuid?.() === 0;

function have(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}
function ensureApt(cmd, pkg) {
  if (have(cmd)) return true;
  if (!isRoot) return false;
  console.error(`[bench] installing ${pkg} from apt…`);
  spawnSync("sh", ["-c", `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg} >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}) >/dev/null 2>&1`]);
  return have(cmd);
}

if (!existsSync(join(root, "dist", "cli.js"))) {
  console.error("bench: run `npm run build` first");
  process.exit(1);
}
if (!ensureApt("wrk", "wrk")) {
  console.error("bench: wrk is not installed (apt install wrk)");
  process.exit(1);
}
const haveSqlite = ensureApt("sqlite3", "sqlite3");
const haveProsody = WITH_PROSODY && have("prosody") && have("prosodyctl") && have("runuser");

const freePort = () =>
  new Promise((res) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitHttp(port, ms = 20000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((res) => {
      const sock = connect(port, "127.0.0.1", () => {
        sock.destroy();
        res(true);
      });
      sock.on("error", () => res(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on ${port}`);
}

const DDL = `CREATE TABLE IF NOT EXISTS "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS "prosody_index" ON "prosody" ("host", "user", "store", "key");`;

/** Fills a fresh SQLite file with `n` invite rows shaped like Prosody's. */
function prepopulate(file, n) {
  if (n === 0) return;
  if (!haveSqlite) throw new Error("sqlite3 is needed to prepopulate (apt install sqlite3)");
  const now = Math.floor(Date.now() / 1000);
  const sql = `${DDL}
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${n})
INSERT INTO prosody SELECT 'example.com', '', 'invite_token', printf('pre%021d', i), 'json',
  printf('{"token":"pre%021d","type":"register","jid":"example.com","allow_registration":true,"uri":"xmpp:example.com?register;preauth=pre%021d","created_at":${now},"expires":${now + 604800},"additional_data":{"source":"bench"}}', i, i) FROM c;
COMMIT;`;
  execFileSync("sqlite3", [file], { input: sql });
}

/** The same invites as Prosody's internal storage keeps them: one invite_token.dat for the host. */
function prepopulateInternal(dataDir, n) {
  if (n === 0) return;
  const now = Math.floor(Date.now() / 1000);
  const dir = join(dataDir, "example%2ecom");
  mkdirSync(dir, { recursive: true });
  const parts = ["return {\n"];
  for (let i = 1; i <= n; i++) {
    const t = `pre${String(i).padStart(21, "0")}`;
    parts.push(`\t["${t}"] = {\n\t\t["token"] = "${t}";\n\t\t["type"] = "register";\n\t\t["jid"] = "example.com";\n\t\t["allow_registration"] = true;\n\t\t["uri"] = "xmpp:example.com?register;preauth=${t}";\n\t\t["created_at"] = ${now};\n\t\t["expires"] = ${now + 604800};\n\t\t["additional_data"] = {\n\t\t\t["source"] = "bench";\n\t\t};\n\t};\n`);
  }
  parts.push("};\n");
  writeFileSync(join(dir, "invite_token.dat"), parts.join(""));
}

function countInternal(dataDir) {
  const f = join(dataDir, "example%2ecom", "invite_token.dat");
  if (!existsSync(f)) return 0;
  return (readFileSync(f, "utf8").match(/^\t\["/gm) ?? []).length;
}

function countInvites(file) {
  return Number(execFileSync("sqlite3", [file, "SELECT count(*) FROM prosody WHERE store = 'invite_token';"]).toString().trim());
}

async function benchOurs(rows, storage) {
  const dir = mkdtempSync(join(tmpdir(), "bench-ours-"));
  const port = await freePort();
  const cfg = join(dir, "prosody.cfg.lua");
  writeFileSync(
    cfg,
    `run_as_root = true\ndata_path = "${dir}/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nstorage = "${storage}"\nsql = { driver = "SQLite3", database = "prosody.sqlite" }\nVirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api" }\n`,
  );
  prefill(dir, storage, rows);
  const ctl = (a) => execFileSync(process.execPath, [join(root, "prosodyctl-shim/prosodyctl"), "--config", cfg, ...a], { cwd: dir }).toString().trim();
  const key = ctl(["mod_invites_api", "create", "example.com", "bench"]);
  const server = spawn(process.execPath, [join(root, "prosodyctl-shim/prosodyctl"), "--config", cfg, "--quiet", "start"], { cwd: dir, stdio: "ignore" });
  return measure({ server, port, key, dir, storage, rows });
}

/** Loads a running server at 1 and 16 connections, stops it, counts what was stored. */
async function measure({ server, port, key, dir, storage, rows }) {
  await waitHttp(port);
  const url = `http://127.0.0.1:${port}/invites_api?key=${key}`;
  const results = {};
  // wrk would send Host: 127.0.0.1:port; the virtual host is example.com.
  const warm = WARMUP > 0 ? wrkHost(url, 16, "example.com", WARMUP) : { total: 0, non2xx: 0 };
  for (const c of [1, 16]) results[c] = wrkHost(url, c, "example.com");
  server.kill("SIGTERM");
  await new Promise((r) => server.on("exit", r));
  const data = join(dir, "data");
  const stored = storage === "sql" ? (haveSqlite ? countInvites(join(data, "prosody.sqlite")) - rows : NaN) : countInternal(data) - rows;
  return { results, stored, warm201: warm.total - warm.non2xx };
}

/** The store both servers start from: `rows` invites, in the chosen storage's files. */
function prefill(dir, storage, rows) {
  mkdirSync(join(dir, "data"), { recursive: true });
  if (storage === "sql") prepopulate(join(dir, "data", "prosody.sqlite"), rows);
  else prepopulateInternal(join(dir, "data"), rows);
}

function wrkHost(url, conns, host, seconds = SECONDS) {
  const threads = Math.min(conns, 2);
  const out = execFileSync("wrk", [`-t${threads}`, `-c${conns}`, `-d${seconds}s`, "--latency", "--timeout", "5s", "-H", `Host: ${host}`, url]).toString();
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const total = Number(/(\d+) requests in/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const pct = (p) => {
    const m = new RegExp(`\\s${p}(?:\\.000)?%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  return { rps, total, non2xx, p50: pct(50), p99: pct(99) };
}

async function benchProsody(rows, storage) {
  const dir = mkdtempSync(join(tmpdir(), "bench-prosody-"));
  const port = await freePort();
  const c2s = await freePort();
  const cfg = join(dir, "prosody.cfg.lua");
  mkdirSync(join(dir, "data"), { recursive: true });
  mkdirSync(join(dir, "certs"), { recursive: true });
  writeFileSync(
    cfg,
    `pidfile = "${dir}/prosody.pid"\ndata_path = "${dir}/data"\ncertificates = "${dir}/certs"\nlog = { warn = "${dir}/prosody.log" }\n` +
      `http_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nhttps_ports = {}\nc2s_ports = { ${c2s} }\nc2s_interfaces = { "127.0.0.1" }\ns2s_ports = {}\n` +
      `storage = "${storage}"\nsql = { driver = "SQLite3", database = "prosody.sqlite" }\nmodules_enabled = { "http", "invites", "invites_api" }\nVirtualHost "example.com"\n`,
  );
  prefill(dir, storage, rows);
  const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
  const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
  execFileSync("chown", ["-R", `${uid}:${gid}`, dir]);
  const key = execFileSync("prosodyctl", ["--config", cfg, "mod_invites_api", "create", "example.com", "bench"], { cwd: dir }).toString().trim().split("\n").pop();
  const server = spawn("runuser", ["-u", "prosody", "--", "prosody", "--config", cfg, "-F"], { cwd: dir, stdio: "ignore" });
  return measure({ server, port, key, dir, storage, rows });
}

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
const lines = [];
const summary = {};
for (const storage of STORAGES) for (const rows of ROWS) {
  for (const [name, fn] of [[`prosody-ts (${storage})`, benchOurs], ...(haveProsody ? [[`Prosody 0.12 (${storage})`, benchProsody]] : [])]) {
    let r;
    try {
      r = await fn(rows, storage);
    } catch (err) {
      lines.push(`${name.padEnd(20)} ${String(rows).padStart(7)}  failed: ${err.message}`);
      continue;
    }
    summary[`${name}@${rows}`] = r;
    const ok201 = r.warm201 + r.results[1].total - r.results[1].non2xx + r.results[16].total - r.results[16].non2xx;
    for (const c of [1, 16]) {
      const x = r.results[c];
      lines.push(
        `${name.padEnd(20)} ${String(rows).padStart(7)} ${String(c).padStart(5)}  ${fmt(x.rps).padStart(8)}  ${fmt(x.p50, 2).padStart(8)}  ${fmt(x.p99, 2).padStart(8)}  ${String(x.non2xx).padStart(6)}` +
          (c === 16 ? `   stored ${r.stored} / 201s seen ${ok201}` : ""),
      );
    }
  }
}
console.log(`\ninvite creation over HTTP, ${SECONDS} s per run after ${WARMUP} s of warm-up, wrk on 127.0.0.1 (${new Date().toISOString()})`);
console.log(`${"server".padEnd(20)} ${"stored".padStart(7)} ${"conns".padStart(5)}  ${"req/s".padStart(8)}  ${"p50 ms".padStart(8)}  ${"p99 ms".padStart(8)}  ${"non2xx".padStart(6)}`);
for (const l of lines) console.log(l);
for (const storage of STORAGES) for (const rows of ROWS) {
  const ours = summary[`prosody-ts (${storage})@${rows}`];
  const theirs = summary[`Prosody 0.12 (${storage})@${rows}`];
  if (ours && theirs) console.log(`ratio at 16 connections, ${storage}, ${rows} stored: ${fmt(ours.results[16].rps / theirs.results[16].rps, 1)}x Prosody`);
}
if (!haveProsody) console.log("(real Prosody not installed or --no-prosody: its rows are missing)");
