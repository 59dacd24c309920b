#!/usr/bin/env node
// Benchmark: invite creation over HTTP (GET /invites_api?key=…) on this host and, when it is
// installed, on real Prosody 0.12 with the same storage, on the same machine in the same run.
// Load tool: wrk (apt install wrk; installed automatically when run as root). Traffic stays on
// 127.0.0.1; every run is bounded by BENCH_SECONDS (default 5).
//
// Usage: npm run build && node bench/invites-api.mjs [--seconds N] [--warmup N] [--rows 0,100000]
//          [--storage sql,internal,postgresql] [--pg-durable] [--no-prosody] [--no-limits] [--no-admin-api]
// At the end it runs bench/admin-api.mjs (unless --no-admin-api): POST /admin_api/invites/account
// next to POST /invites_api on one of our servers (SQLite, 0 stored), the admin API's row.
// Our rate limits stay on (the bench key gets --rate 100000000/s and the host the same per
// address, so no request is refused but every one goes through both token buckets); --no-limits
// turns them off (invites_api_rate = false, invites_api_rate_per_ip = false) to measure their cost.
// `postgresql` starts a private PostgreSQL cluster (test/helpers/postgres.ts, loaded through tsx:
// initdb in a temporary directory, stopped at exit) and measures, each on its own database of it:
// ours with one instance, ours with two instances on one database (two server processes, the load
// split across them: two wrk, half the connections each), and real Prosody (needs
// lua-dbi-postgresql). It also prints the database's cost per created invite: transactions
// (pg_stat_database) and statements (the server's statement log during 50 sequential creates).
// The cluster does not wait for the disk at COMMIT (fsync off, as in the tests) unless
// --pg-durable is given (fsync on, as in production: then every COMMIT waits for a disk flush).
// Each server first gets --warmup seconds (default 2) of the same load at 16 connections, not
// measured (JIT and WebAssembly tier-up, first compaction); its invites count in "stored".
// Prints, per server and store size: requests/s and p50/p99 latency at 1 and 16 connections,
// and how many invites the store holds afterwards compared with the 201s wrk counted. "errors" are
// non-2xx answers plus wrk's socket errors (connect, read, write, timeout).
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { ensureApt, freePort, have, prefill, sleep, opt as optOf, waitHttp, preflight, SERVER_NODE_ARGS } from "./_common.mjs";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const opt = (name, dflt) => optOf(args, name, dflt);
const SECONDS = Number(opt("seconds", process.env.BENCH_SECONDS ?? 5));
const WARMUP = Number(opt("warmup", process.env.BENCH_WARMUP ?? 2));
const ROWS = String(opt("rows", "0,100000")).split(",").map(Number);
const STORAGES = String(opt("storage", "sql")).split(",");
const WITH_PROSODY = !args.includes("--no-prosody");
const PG_DURABLE = args.includes("--pg-durable");
const LIMITS = !args.includes("--no-limits");
const HIGH_RATE = "100000000/s";
preflight(root, ["wrk"]);
const haveSqlite = ensureApt("sqlite3", "sqlite3");
const haveProsody = WITH_PROSODY && have("prosody") && have("prosodyctl") && have("runuser");

function countInternal(dataDir) {
  const f = join(dataDir, "example%2ecom", "invite_token.dat");
  if (!existsSync(f)) return 0;
  return (readFileSync(f, "utf8").match(/^\t\["/gm) ?? []).length;
}

function countInvites(file) {
  return Number(execFileSync("sqlite3", [file, "SELECT count(*) FROM prosody WHERE store = 'invite_token';"]).toString().trim());
}

// --- PostgreSQL: one private cluster for the run, one database per measured setup ---

let pg; // { cluster, ddl }, on first use
async function postgres() {
  if (pg) return pg;
  // The test helper is TypeScript: load it through tsx (a dev dependency) rather than keep a copy.
  const { tsImport } = await import("tsx/esm/api");
  const helper = await tsImport("../test/helpers/postgres.ts", import.meta.url);
  const { PROSODY_PG_DDL } = await tsImport("../src/storage/drivers/sql-pg.ts", import.meta.url);
  const missing = helper.postgresMissing();
  if (missing) throw new Error(missing);
  pg = { cluster: await helper.startCluster({ durable: PG_DURABLE }), ddl: PROSODY_PG_DDL };
  return pg;
}

/** A new database with Prosody's tables and `n` invite rows shaped like Prosody's; its `sql` option. */
async function prepopulatePg(n) {
  const { cluster, ddl } = await postgres();
  const t = await cluster.createDatabase();
  const now = Math.floor(Date.now() / 1000);
  const tok = `'pre' || lpad(i::text, 21, '0')`;
  cluster.psql(t.database, `SET client_min_messages = warning; ${ddl.join("\n")}`);
  if (n > 0) {
    cluster.psql(
      t.database,
      `INSERT INTO "prosody" SELECT 'example.com', '', 'invite_token', ${tok}, 'json',
        '{"token":"' || ${tok} || '","type":"register","jid":"example.com","allow_registration":true,"uri":"xmpp:example.com?register;preauth=' || ${tok} ||
        '","created_at":${now},"expires":${now + 604800},"additional_data":{"source":"bench"}}' FROM generate_series(1, ${n}) AS i; ANALYZE "prosody";`,
    );
  }
  return { db: t.database, sqlOption: `sql = { driver = "PostgreSQL", database = "${t.database}", username = "${t.username}", host = "${t.host}", port = ${t.port} }` };
}

/** The database's counters (a server's backends report theirs when they end, so read after a stop). */
function pgStats(db) {
  const [xact, ins, del, upd] = pg.cluster
    .psql("postgres", `SELECT xact_commit, tup_inserted, tup_deleted, tup_updated FROM pg_stat_database WHERE datname = '${db}'`)
    .trim()
    .split("|")
    .map(Number);
  return { xact, ins, del, upd };
}

/**
 * The statements a running server sends `db` for `n` sequential creates: statement logging is
 * switched on for the cluster (a reload applies it to open connections too), the requests are
 * made, logging is switched off, and the log lines naming `db` are counted.
 */
async function statementsPerCreate(db, port, key, n = 50) {
  const { cluster } = pg;
  const log = join(cluster.dir, "log");
  const setLogging = (on) => {
    cluster.psql("postgres", on ? "ALTER SYSTEM SET log_statement = 'all'" : "ALTER SYSTEM RESET log_statement");
    cluster.psql("postgres", on ? "ALTER SYSTEM SET log_line_prefix = '%d '" : "ALTER SYSTEM RESET log_line_prefix");
    cluster.psql("postgres", "SELECT pg_reload_conf()");
  };
  setLogging(true);
  await sleep(300);
  const from = statSync(log).size;
  let created = 0;
  for (let i = 0; i < n; i++) if ((await httpGet(port, `/invites_api?key=${key}`)) === 201) created++;
  await sleep(300);
  const text = readFileSync(log, "utf8").slice(from);
  setLogging(false);
  const statements = text.split("\n").filter((l) => l.startsWith(`${db} LOG:  `) && /LOG: {2}(statement|execute [^:]*):/.test(l)).length;
  return { statements: created ? statements / created : NaN, created };
}

function httpGet(port, path) {
  return new Promise((res, rej) => {
    const req = request({ host: "127.0.0.1", port, path, headers: { Host: "example.com" } }, (r) => {
      r.resume();
      r.on("end", () => res(r.statusCode));
    });
    req.on("error", rej);
    req.end();
  });
}

// --- CPU time (Linux /proc): what a request costs whatever else the machine is doing ---

const TICK_MS = 1000 / Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim() || 100);
/** [ppid, own ticks, reaped children's ticks] of a process, or undefined when it is gone. */
function procStat(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").slice(readFileSync(`/proc/${pid}/stat`, "utf8").lastIndexOf(")") + 2).split(" ");
    return [Number(f[1]), Number(f[11]) + Number(f[12]), Number(f[13]) + Number(f[14])];
  } catch {
    return undefined;
  }
}
/** CPU milliseconds used so far by `pid` and all its descendants, living or reaped. */
function cpuMs(pid) {
  const kids = new Map();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    const st = procStat(e);
    if (st) kids.set(Number(e), st);
  }
  let ticks = 0;
  const walk = (p) => {
    const st = kids.get(p);
    if (!st) return;
    ticks += st[1] + st[2];
    for (const [c, cs] of kids) if (cs[0] === p) walk(c);
  };
  walk(pid);
  return ticks * TICK_MS;
}
const postmasterPid = () => Number(readFileSync(join(pg.cluster.dir, "data", "postmaster.pid"), "utf8").split("\n")[0]);

// --- the servers ---

async function benchOurs(rows, storage, instances = 1) {
  const dir = mkdtempSync(join(tmpdir(), "bench-ours-"));
  const ports = [];
  for (let i = 0; i < instances; i++) ports.push(await freePort());
  const pgDb = storage === "postgresql" ? await prepopulatePg(rows) : undefined;
  const cfg = join(dir, "prosody.cfg.lua");
  writeFileSync(
    cfg,
    `run_as_root = true\ndata_path = "${dir}/data"\nhttp_ports = { ${ports[0]} }\nhttp_interfaces = { "127.0.0.1" }\nstorage = "${pgDb ? "sql" : storage}"\n` +
      `${pgDb ? pgDb.sqlOption : 'sql = { driver = "SQLite3", database = "prosody.sqlite" }'}\nVirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api" }\n` +
      (LIMITS ? `invites_api_rate_per_ip = "${HIGH_RATE}"\n` : "invites_api_rate = false\ninvites_api_rate_per_ip = false\n"),
  );
  if (!pgDb) prefill(dir, storage, rows);
  else mkdirSync(join(dir, "data"), { recursive: true });
  // Instance i > 0: the same config with its own HTTP port (and its own pidfile-less start).
  const cfgs = ports.map((p, i) => {
    if (i === 0) return cfg;
    const own = join(dir, `instance${i}.cfg.lua`);
    writeFileSync(own, `Include "prosody.cfg.lua"\nhttp_ports = { ${p} }\n`);
    return own;
  });
  const ctl = (a) => execFileSync(process.execPath, [join(root, "prosodyctl-shim/prosodyctl"), "--config", cfg, ...a], { cwd: dir }).toString().trim();
  const key = ctl(["mod_invites_api", "create", "example.com", "bench", ...(LIMITS ? ["--rate", HIGH_RATE] : [])]);
  const before = pgDb && pgStats(pgDb.db);
  const servers = cfgs.map((c) => spawn(process.execPath, [...SERVER_NODE_ARGS, join(root, "prosodyctl-shim/prosodyctl"), "--config", c, "--quiet", "start"], { cwd: dir, stdio: "ignore" }));
  return measure({ servers, ports, key, dir, storage, rows, pgDb, before });
}

/**
 * Loads the running servers at 1 and 16 connections (with several servers: the connections split
 * evenly, one wrk per server, at the same time), stops them, counts what was stored.
 */
async function measure({ servers, ports, key, dir, storage, rows, pgDb, before }) {
  for (const port of ports) await waitHttp(port);
  const results = {};
  // wrk would send Host: 127.0.0.1:port; the virtual host is example.com.
  const warm = WARMUP > 0 ? await load(ports, key, 16, WARMUP) : { total: 0, non2xx: 0 };
  let cpu;
  for (const c of [1, 16]) {
    if (c < ports.length) continue;
    const cpu0 = [servers.reduce((a, s) => a + cpuMs(s.pid), 0), pgDb ? cpuMs(postmasterPid()) : NaN];
    results[c] = await load(ports, key, c, SECONDS);
    const n = results[c].total - results[c].non2xx;
    // CPU per created invite at 16 connections: the server process(es), and the whole database cluster.
    if (c === 16) cpu = { server: (servers.reduce((a, s) => a + cpuMs(s.pid), 0) - cpu0[0]) / n, db: pgDb ? (cpuMs(postmasterPid()) - cpu0[1]) / n : NaN };
  }
  const perCreate = pgDb ? await statementsPerCreate(pgDb.db, ports[0], key) : undefined;
  for (const server of servers) server.kill("SIGTERM");
  await Promise.all(servers.map((server) => (server.exitCode !== null ? undefined : new Promise((r) => server.on("exit", r)))));
  const data = join(dir, "data");
  let stored;
  if (pgDb) stored = Number(pg.cluster.psql(pgDb.db, `SELECT count(*) FROM "prosody" WHERE "store" = 'invite_token'`).trim()) - rows;
  else stored = storage === "sql" ? (haveSqlite ? countInvites(join(data, "prosody.sqlite")) - rows : NaN) : countInternal(data) - rows;
  // The statement probe's creates are stored too: count them with the warm-up's.
  const warm201 = warm.total - warm.non2xx + (perCreate?.created ?? 0);
  let db;
  if (pgDb) {
    await sleep(500); // the backends' last counters
    const after = pgStats(pgDb.db);
    const created = stored;
    db = { xact: (after.xact - before.xact) / created, ins: (after.ins - before.ins) / created, del: (after.del - before.del) / created, upd: (after.upd - before.upd) / created, statements: perCreate.statements };
  }
  return { results, stored, warm201, db, cpu, instances: ports.length };
}

/** wrk against every port at once, `conns` split evenly; the sums, the mean p50 and the worst p99. */
async function load(ports, key, conns, seconds) {
  const each = await Promise.all(ports.map((port) => wrkHost(`http://127.0.0.1:${port}/invites_api?key=${key}`, conns / ports.length, "example.com", seconds)));
  const sum = (f) => each.reduce((a, x) => a + x[f], 0);
  return {
    rps: sum("rps"),
    total: sum("total"),
    non2xx: sum("non2xx"),
    socketErrors: sum("socketErrors"),
    p50: sum("p50") / each.length,
    p99: Math.max(...each.map((x) => x.p99)),
  };
}

const execFileP = promisify(execFile);
async function wrkHost(url, conns, host, seconds = SECONDS) {
  const threads = Math.min(conns, 2);
  const { stdout: out } = await execFileP("wrk", [`-t${threads}`, `-c${conns}`, `-d${seconds}s`, "--latency", "--timeout", "5s", "-H", `Host: ${host}`, url]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const total = Number(/(\d+) requests in/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((a, n) => a + Number(n), 0) : 0;
  const pct = (p) => {
    const m = new RegExp(`\\s${p}(?:\\.000)?%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  return { rps, total, non2xx, socketErrors, p50: pct(50), p99: pct(99) };
}

async function benchProsody(rows, storage) {
  const dir = mkdtempSync(join(tmpdir(), "bench-prosody-"));
  const port = await freePort();
  const c2s = await freePort();
  const pgDb = storage === "postgresql" ? await prepopulatePg(rows) : undefined;
  const cfg = join(dir, "prosody.cfg.lua");
  mkdirSync(join(dir, "data"), { recursive: true });
  mkdirSync(join(dir, "certs"), { recursive: true });
  writeFileSync(
    cfg,
    `pidfile = "${dir}/prosody.pid"\ndata_path = "${dir}/data"\ncertificates = "${dir}/certs"\nlog = { warn = "${dir}/prosody.log" }\n` +
      `http_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nhttps_ports = {}\nc2s_ports = { ${c2s} }\nc2s_interfaces = { "127.0.0.1" }\ns2s_ports = {}\n` +
      `storage = "${pgDb ? "sql" : storage}"\n${pgDb ? pgDb.sqlOption : 'sql = { driver = "SQLite3", database = "prosody.sqlite" }'}\nmodules_enabled = { "http", "invites", "invites_api" }\nVirtualHost "example.com"\n`,
  );
  if (!pgDb) prefill(dir, storage, rows);
  const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
  const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
  execFileSync("chown", ["-R", `${uid}:${gid}`, dir]);
  // stderr: libpq prints the server's NOTICEs (tables that already exist) there.
  const key = execFileSync("prosodyctl", ["--config", cfg, "mod_invites_api", "create", "example.com", "bench"], { cwd: dir, stdio: ["ignore", "pipe", "ignore"] }).toString().trim().split("\n").pop();
  const before = pgDb && pgStats(pgDb.db);
  const server = spawn("runuser", ["-u", "prosody", "--", "prosody", "--config", cfg, "-F"], { cwd: dir, stdio: "ignore" });
  return measure({ servers: [server], ports: [port], key, dir, storage, rows, pgDb, before });
}

const haveLuaPg = spawnSync("dpkg", ["-s", "lua-dbi-postgresql"], { stdio: "ignore" }).status === 0;
/** The setups measured for one storage: ours (1 and, on PostgreSQL, 2 instances) and real Prosody. */
function setups(storage) {
  const list = [[`prosody-ts (${storage})`, (rows) => benchOurs(rows, storage)]];
  if (storage === "postgresql") list.push([`prosody-ts ×2 (${storage})`, (rows) => benchOurs(rows, storage, 2)]);
  if (haveProsody && (storage !== "postgresql" || haveLuaPg)) list.push([`Prosody 0.12 (${storage})`, (rows) => benchProsody(rows, storage)]);
  return list;
}

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
const lines = [];
const costs = [];
const summary = {};
const W = 26;
for (const storage of STORAGES) for (const rows of ROWS) {
  for (const [name, fn] of setups(storage)) {
    let r;
    try {
      r = await fn(rows);
    } catch (err) {
      lines.push(`${name.padEnd(W)} ${String(rows).padStart(7)}  failed: ${err.message}`);
      continue;
    }
    summary[`${name}@${rows}`] = r;
    const ok201 = r.warm201 + Object.values(r.results).reduce((a, x) => a + x.total - x.non2xx, 0);
    for (const c of [1, 16]) {
      const x = r.results[c];
      if (!x) continue;
      lines.push(
        `${name.padEnd(W)} ${String(rows).padStart(7)} ${String(c).padStart(5)}  ${fmt(x.rps).padStart(8)}  ${fmt(x.p50, 2).padStart(8)}  ${fmt(x.p99, 2).padStart(8)}  ${String(x.non2xx + x.socketErrors).padStart(6)}` +
          (c === 16 ? `  ${fmt(r.cpu.server, 2).padStart(7)}  ${fmt(r.cpu.db, 2).padStart(7)}   stored ${r.stored} / 201s seen ${ok201}` : ""),
      );
    }
    if (r.db)
      costs.push(
        `${name.padEnd(W)} ${String(rows).padStart(7)}  ${fmt(r.db.statements, 1).padStart(10)}  ${fmt(r.db.xact, 2).padStart(12)}  ${fmt(r.db.ins, 2).padStart(8)}  ${fmt(r.db.del, 2).padStart(8)}  ${fmt(r.db.upd, 2).padStart(8)}`,
      );
  }
}
console.log(`\ninvite creation over HTTP, ${SECONDS} s per run after ${WARMUP} s of warm-up, wrk on 127.0.0.1 (${new Date().toISOString()})`);
console.log(`our rate limits: ${LIMITS ? `on (${HIGH_RATE} per key and per address: every request counted, none refused)` : "off (--no-limits)"}`);
if (STORAGES.includes("postgresql")) console.log(`PostgreSQL: private cluster, fsync ${PG_DURABLE ? "on (--pg-durable)" : "off"}`);
console.log(`${"server".padEnd(W)} ${"stored".padStart(7)} ${"conns".padStart(5)}  ${"req/s".padStart(8)}  ${"p50 ms".padStart(8)}  ${"p99 ms".padStart(8)}  ${"errors".padStart(6)}  ${"cpu ms".padStart(7)}  ${"db ms".padStart(7)}`);
console.log(`(cpu ms / db ms: CPU time per created invite at 16 connections, of the server process(es) / of the whole PostgreSQL cluster)`);
for (const l of lines) console.log(l);
if (costs.length) {
  console.log(`\nPostgreSQL cost per created invite (statements: 50 sequential creates; the rest: the whole run)`);
  console.log(`${"server".padEnd(W)} ${"stored".padStart(7)}  ${"statements".padStart(10)}  ${"transactions".padStart(12)}  ${"inserts".padStart(8)}  ${"deletes".padStart(8)}  ${"updates".padStart(8)}`);
  for (const l of costs) console.log(l);
  console.log("(×2: two instances on one database, 8 connections each; p50 is the mean of the two, p99 the worse)");
}
for (const storage of STORAGES) for (const rows of ROWS) {
  const theirs = summary[`Prosody 0.12 (${storage})@${rows}`];
  for (const [name] of setups(storage)) {
    const ours = summary[`${name}@${rows}`];
    if (ours && theirs && ours !== theirs) console.log(`ratio at 16 connections, ${name}, ${rows} stored: ${fmt(ours.results[16].rps / theirs.results[16].rps, 1)}x Prosody`);
  }
}
if (!haveProsody) console.log("(real Prosody not installed or --no-prosody: its rows are missing)");
if (STORAGES.includes("postgresql") && haveProsody && !haveLuaPg) console.log("(lua-dbi-postgresql not installed: real Prosody's PostgreSQL rows are missing)");
if (!args.includes("--no-admin-api")) {
  const extra = ["--seconds", String(SECONDS), "--warmup", String(WARMUP), ...(LIMITS ? [] : ["--no-limits"])];
  spawnSync(process.execPath, [join(root, "bench", "admin-api.mjs"), ...extra], { stdio: "inherit" });
}
