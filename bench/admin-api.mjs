#!/usr/bin/env node
// Benchmark: creating an account invite through mod_http_admin_api (`POST /admin_api/invites/account`,
// JSON body, validated by ajv, JSON invite object back) next to the plain mod_invites_api path
// (`POST /invites_api`, empty body, Location header), on one server, same storage, same run.
// Load tool: wrk (apt install wrk). Traffic stays on 127.0.0.1; each run lasts --seconds (default 5).
//
// Usage: npm run build && node bench/admin-api.mjs [--seconds N] [--warmup N] [--storage sql|internal] [--no-limits]
// (bench/invites-api.mjs runs it at its end, for its row of the admin API.)
// Prints requests/s and p50/p99 latency at 1 and 16 connections per endpoint, and the non-2xx count.
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort, opt as optOf, waitHttp, preflight, SERVER_NODE_ARGS } from "./_common.mjs";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const opt = (name, dflt) => optOf(args, name, dflt);
const SECONDS = Number(opt("seconds", 5));
const WARMUP = Number(opt("warmup", 2));
const STORAGE = opt("storage", "sql");
// As in bench/invites-api.mjs: the limits stay on, high enough that nothing is refused.
const LIMITS = !args.includes("--no-limits");
const HIGH_RATE = "100000000/s";
preflight(root, ["wrk"]);

const execFileP = promisify(execFile);

/** A wrk script sending one POST with this body and key (wrk's Lua API). */
function script(dir, name, key, body, type) {
  const file = join(dir, `${name}.lua`);
  const lua = (s) => JSON.stringify(s); // a JSON string is a valid Lua string literal for these ASCII values
  writeFileSync(
    file,
    `wrk.method = "POST"\nwrk.body = ${lua(body)}\nwrk.headers["Host"] = "example.com"\nwrk.headers["Authorization"] = ${lua(`Bearer ${key}`)}\n` +
      (type ? `wrk.headers["Content-Type"] = ${lua(type)}\n` : ""),
  );
  return file;
}

async function wrk(url, lua, conns, seconds) {
  const { stdout: out } = await execFileP("wrk", [`-t${Math.min(conns, 2)}`, `-c${conns}`, `-d${seconds}s`, "--latency", "--timeout", "5s", "-s", lua, url]);
  const pct = (p) => {
    const m = new RegExp(`\\s${p}(?:\\.000)?%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1) : NaN;
  };
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
    p50: pct(50),
    p99: pct(99),
  };
}

const dir = mkdtempSync(join(tmpdir(), "bench-admin-api-"));
const port = await freePort();
const cfg = join(dir, "prosody.cfg.lua");
writeFileSync(
  cfg,
  `run_as_root = true\ndata_path = "${dir}/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nstorage = "${STORAGE}"\n` +
    `sql = { driver = "SQLite3", database = "prosody.sqlite" }\n` +
    (LIMITS ? `invites_api_rate_per_ip = "${HIGH_RATE}"\n` : `invites_api_rate = false\ninvites_api_rate_per_ip = false\n`) +
    `VirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api", "http_admin_api" }\n`,
);
const ctl = (a) => execFileSync(process.execPath, [join(root, "prosodyctl-shim/prosodyctl"), "--config", cfg, ...a], { cwd: dir }).toString().trim();
// A key made as Prosody makes them: the create scope, which both endpoints need.
const key = ctl(["mod_invites_api", "create", "example.com", "bench", ...(LIMITS ? ["--rate", HIGH_RATE] : [])]);
const server = spawn(process.execPath, [...SERVER_NODE_ARGS, join(root, "prosodyctl-shim/prosodyctl"), "--config", cfg, "--quiet", "start"], { cwd: dir, stdio: ["ignore", "ignore", "inherit"] });
try {
  await waitHttp(port);
  const endpoints = [
    ["POST /invites_api", `http://127.0.0.1:${port}/invites_api`, script(dir, "plain", key, "", undefined)],
    ["POST /admin_api/invites/account", `http://127.0.0.1:${port}/admin_api/invites/account`, script(dir, "admin", key, '{"note":"bench","ttl":3600}', "application/json")],
  ];
  console.log(`\ninvite creation over HTTP (${STORAGE}), ${SECONDS} s per run after ${WARMUP} s of warm-up; load average before: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  console.log("endpoint                         conns   req/s   p50 ms   p99 ms  non-2xx");
  for (const [name, url, lua] of endpoints) {
    if (WARMUP > 0) await wrk(url, lua, 16, WARMUP);
    for (const c of [1, 16]) {
      const r = await wrk(url, lua, c, SECONDS);
      console.log(`${name.padEnd(32)} ${String(c).padStart(5)} ${r.rps.toFixed(0).padStart(7)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(8)} ${String(r.non2xx).padStart(8)}`);
    }
  }
  console.log(`load average after: ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
} finally {
  server.kill("SIGTERM");
}
