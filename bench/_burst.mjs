// A sustained API write burst against a running server of ours, with the server's RSS sampled
// during it and after it (shared by bench/cli.mjs and bench/write-rss.mjs).
import { execFile, execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { sleep } from "./_common.mjs";

const execFileP = promisify(execFile);

/** VmRSS of a process in MB, or NaN. */
export function rssMb(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;
  } catch {
    return NaN;
  }
}

/**
 * Where a process's resident memory is, in MB, from /proc/PID/smaps: the main heap ([heap]), other
 * anonymous mappings of ≥ 32 MB of address space (glibc malloc arenas and large reservations such
 * as WebAssembly memories), the remaining anonymous mappings, and file-backed ones.
 */
export function rssSplit(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  } catch {
    return undefined;
  }
  const out = { heap: 0, bigAnon: 0, anon: 0, file: 0 };
  let kind = "anon";
  let size = 0;
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (m) {
      size = (parseInt(m[2], 16) - parseInt(m[1], 16)) / 1048576;
      const name = m[4];
      kind = name === "[heap]" ? "heap" : name.startsWith("/") ? "file" : size >= 32 ? "bigAnon" : "anon";
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r) out[kind] += Number(r[1]) / 1024;
  }
  return out;
}

/**
 * A lua script making wrk send POST with the key as a bearer token; with `perThread`, each of
 * wrk's threads sends that many POSTs, then GETs the API's OpenAPI document (no write) instead.
 */
function postScript(key, perThread) {
  const file = join(tmpdir(), `bench-burst-${process.pid}.lua`);
  let lua = `wrk.method = "POST"\nwrk.headers["Authorization"] = "Bearer ${key}"\nwrk.headers["Host"] = "example.com"\n`;
  if (perThread !== undefined)
    lua +=
      `local sent = 0\nrequest = function()\n  sent = sent + 1\n` +
      `  if sent > ${perThread} then return wrk.format("GET", "/invites_api/openapi.json") end\n` +
      `  return wrk.format("POST", "/invites_api")\nend\n`;
  writeFileSync(file, lua);
  return file;
}

/**
 * `conns` connections POSTing /invites_api on 127.0.0.1:`port` for `seconds`; the server's VmRSS
 * sampled every 250 ms meanwhile (its peak) and `after` ms after the burst (and the peak over that
 * wait). `writes`: at most that many POSTs (then the connections GET a document that writes
 * nothing), so that the store ends at a known size. Returns { requests, non2xx, peak, after,
 * afterPeak } (MB); `requests` counts every answered request (POSTs and, with `writes`, GETs).
 */
export async function writeBurst({ pid, port, key, conns = 16, seconds = 10, after = 5000, writes }) {
  const script = postScript(key, writes === undefined ? undefined : Math.ceil(writes / 2));
  let peak = 0;
  const tick = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 250);
  try {
    const { stdout } = await execFileP("wrk", [`-t2`, `-c${conns}`, `-d${seconds}s`, "--timeout", "5s", "-s", script, `http://127.0.0.1:${port}/invites_api`]);
    const total = Number(/(\d+) requests in/.exec(stdout)?.[1]);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
    const during = peak;
    peak = 0;
    await sleep(after);
    return { requests: total - non2xx, non2xx, peak: during, after: rssMb(pid), afterPeak: peak };
  } finally {
    clearInterval(tick);
    rmSync(script, { force: true });
  }
}

/** An API key for the bench (prosodyctl run with `ctl` argv prefix), allowed a very high rate. */
export function benchKey(ctl, cwd) {
  const [cmd, ...a] = ctl;
  return execFileSync(cmd, [...a, "mod_invites_api", "create", "example.com", "burst", "--rate", "100000000/s"], { cwd }).toString().trim().split("\n").pop();
}

/**
 * Our server's config for these benches: one host with invites and the invites API on `port`;
 * the write burst's requests all come from 127.0.0.1, so the per-address limit is lifted.
 */
export function benchConfig(dir, port, storage) {
  return (
    `run_as_root = true\ndata_path = "${dir}/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nstorage = "${storage}"\n` +
    `sql = { driver = "SQLite3", database = "prosody.sqlite" }\nVirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api" }\n` +
    `invites_api_rate_per_ip = "100000000/s"\n`
  );
}
