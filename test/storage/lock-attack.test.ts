/**
 * Another local user (`nobody`) attacks the storage locks and "database open" markers of a running
 * server and prosodyctl writers (real processes, SQLite storage): it grabs and floods what used to
 * be our lock (the abstract socket named after the database file), fakes "still open" markers, and
 * tries to create, bind, list and connect in our lock directory. Writes must keep working, a
 * server killed with -9 in the middle of writes must not block the CLI, every acknowledged write
 * must be stored, and (SQLite) the server's clean stop must still fold the journal into prosody.sqlite.
 * Run for both file-backed drivers, `sql` and `internal`.
 * Needs root (to run the attacker as uid 65534); reports its tests skipped otherwise.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import initSqlJs from "sql.js";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import type { KeyvalStore } from "../../src/storage/types.js";
import { PROSODYCTL, prosodyctl } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { seededRandom } from "../helpers/seed.js";
import { skip } from "../helpers/skip.js";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const { random } = seededRandom();

/**
 * The attacker, run as `nobody`. argv: <data dir> <ms> <db file> <locked key>…, where the old lock of
 * a locked key was the abstract socket "\0prosody-ts:" + sha256(key). Prints one JSON line per kind of
 * attempt when done or sent SIGTERM: { what, tries, ok, codes }.
 */
const ATTACKER = String.raw`
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
const [data, msArg, db, ...lockKeys] = process.argv.slice(1);
const end = Date.now() + Number(msArg);
const lockDir = data + "/.prosody-ts-locks";
const stats = {};
const note = (what, code) => {
  const s = (stats[what] ??= { what, tries: 0, ok: 0, codes: {} });
  s.tries++;
  if (code === "ok") s.ok++;
  else s.codes[code] = (s.codes[code] ?? 0) + 1;
};
const hash = (s) => crypto.createHash("sha256").update(s).digest("hex");
const listen = (name) => new Promise((res) => {
  const srv = net.createServer((c) => c.on("error", () => {}));
  srv.once("error", (e) => res([e.code, null]));
  srv.listen(name, () => res(["ok", srv]));
});
const connect = (name) => new Promise((res) => {
  const s = net.connect(name);
  s.on("error", (e) => res(e.code));
  s.on("connect", () => res(["ok", s]));
});
const held = [];
const report = () => {
  for (const s of Object.values(stats)) console.log(JSON.stringify(s));
  process.exit(0);
};
process.on("SIGTERM", report);
// Fake "still open" markers (the old abstract names) for the database, and the old lock name.
for (let i = 0; i < 4; i++) {
  const [code, srv] = await listen("\0prosody-ts-open:" + hash(db) + ":" + (1000 + i) + ":fake" + i);
  note("abstract open marker", code);
  if (srv) held.push(srv);
}
console.log("ready");
// Grab the old locks whenever they are free; connect to them (a waiter makes the holder hand over).
for (const key of lockKeys) {
  const oldLock = "\0prosody-ts:" + hash(key);
  (async () => {
    while (Date.now() < end) {
      const [code, srv] = await listen(oldLock);
      note("abstract lock listen", code);
      if (srv) { held.push(srv); break; }
      const r = await connect(oldLock);
      note("abstract lock connect", Array.isArray(r) ? "ok" : r);
      if (Array.isArray(r)) held.push(r[1]);
    }
  })();
}
// The lock directory: list it, create files and sockets in it, replace it, connect to entries.
const ourPids = () => fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p)).filter((p) => {
  try { return fs.readFileSync("/proc/" + p + "/cmdline", "latin1").includes("prosodyctl"); } catch { return false; }
});
const tryFs = (what, fn) => { try { fn(); note(what, "ok"); } catch (e) { note(what, e.code ?? String(e)); } };
while (Date.now() < end) {
  tryFs("list lock dir", () => fs.readdirSync(lockDir));
  tryFs("create file in lock dir", () => fs.writeFileSync(lockDir + "/w." + hash("x").slice(0, 24) + ".1.fake", ""));
  tryFs("replace lock dir", () => fs.renameSync(lockDir, data + "/.moved"));
  tryFs("create in data dir", () => fs.mkdirSync(data + "/.prosody-ts-locks-2"));
  const [code, srv] = await listen(lockDir + "/o." + hash("prosody.sqlite").slice(0, 24) + ".1.fake");
  note("bind in lock dir", code);
  if (srv) held.push(srv);
  // Our sockets as /proc/net/unix shows them (their bind names), directly and through /proc/<pid>/fd.
  const paths = fs.readFileSync("/proc/net/unix", "latin1").split("\n").map((l) => l.split(" ").pop()).filter((p) => p && (p.includes(".prosody-ts-locks/") || p.includes("/fd/")));
  for (const p of paths.filter((p) => !p.startsWith("/proc/"))) {
    const r = await connect(p);
    note("connect to a socket path", Array.isArray(r) ? "ok" : r);
    if (Array.isArray(r)) r[1].destroy();
  }
  for (const pid of ourPids()) {
    for (const p of paths) {
      const r = await connect(p.startsWith("/proc/self/") ? p.replace("/proc/self/", "/proc/" + pid + "/") : "/proc/" + pid + "/cwd/" + p);
      note("connect via /proc/<pid>", Array.isArray(r) ? "ok" : r);
      if (Array.isArray(r)) r[1].destroy();
    }
  }
  await new Promise((r) => setTimeout(r, 5));
}
report();
`;

async function rowsInFile(file: string, store: string): Promise<string[]> {
  const SQL = await initSqlJs();
  const db = new SQL.Database(fs.readFileSync(file));
  try {
    const r = db.exec(`SELECT key FROM prosody WHERE store = ? ORDER BY key`, [store]);
    return (r[0]?.values ?? []).map((v) => String(v[0]));
  } finally {
    db.close();
  }
}

function startServer(config: string, dir: string): { proc: ChildProcess; exited: Promise<unknown> } {
  const proc = spawn(process.execPath, [PROSODYCTL, "--config", config, "--quiet", "start"], { cwd: dir, stdio: "ignore" });
  return { proc, exited: new Promise((r) => proc.on("exit", r)) };
}

/** Creates an invite through the API; resolves to its token, or rejects (with the status) within `ms`. */
async function apiInvite(port: number, key: string, ms = 10_000): Promise<string> {
  const res = await rawRequest(port, `GET /invites_api?key=${key} HTTP/1.1\r\nHost: example.com\r\n\r\n`, { timeoutMs: ms });
  if (res.status !== 201) throw new Error(`invite creation answered ${res.status}`);
  const m = /preauth=([^&;\s]+)|\?([A-Za-z0-9_-]+)$/.exec(res.header("location") ?? "");
  if (!m) throw new Error(`no token in ${res.header("location")}`);
  return m[1] ?? m[2]!;
}

async function cliKey(config: string, dir: string, ms = 25_000): Promise<string> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir }),
    new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), ms))),
  ]);
  clearTimeout(timer);
  if (!r) throw new Error(`prosodyctl mod_invites_api create did not finish within ${ms} ms`);
  if (r.code !== 0) throw new Error(`prosodyctl failed (${r.code}) after ${Date.now() - started} ms: ${r.stderr}`);
  return r.stdout.trim().split("/")[0]!;
}

async function waitUp(port: number, key: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      return await apiInvite(port, key, 2000);
    } catch (err) {
      last = (err as Error).message;
      await sleep(100);
    }
  }
  throw new Error(`the server did not create an invite within 20 s (last: ${last})`);
}

/** Keys (as `invite_api_keys`) and invite tokens stored, read from the files with no process of ours running. */
async function stored(storage: "sql" | "internal", data: string): Promise<{ keys: Set<string>; invites: Set<string> }> {
  if (storage === "sql") {
    const db = path.join(data, "prosody.sqlite");
    return { keys: new Set(await rowsInFile(db, "invite_api_keys")), invites: new Set(await rowsInFile(db, "invite_token")) };
  }
  const provider = createInternalProvider({ dataPath: data, host: "example.com" });
  const all = async (store: string) => new Set(Object.keys((await (provider.open(store, "keyval") as KeyvalStore).get(null)) ?? {}));
  return { keys: await all("invite_api_keys"), invites: await all("invite_token") };
}

async function attackRun(storage: "sql" | "internal"): Promise<void> {
  // Everything readable by others (as /var/lib/prosody often is not: the lock directory's own mode
  // must be what keeps the attacker out), writable by root only.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-lock-attack-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  // (internal: a data path too long for socket paths, so that ours go through /proc/self/fd)
  const data = path.join(dir, storage === "sql" ? "data" : "a-data-directory-with-a-long-name-so-that-socket-paths-go-through-procfs");
  fs.mkdirSync(data, { mode: 0o755 });
  fs.chmodSync(data, 0o755);
  const port = await freePort();
  const config = path.join(dir, "prosody.cfg.lua");
  fs.writeFileSync(
    config,
    // Load from one address: our rate limits off (they have their own tests, invites/api-limits).
    `run_as_root = true\ndata_path = "${data}"\nhttp_ports = { ${port} }\nstorage = "${storage}"\ninvites_api_rate = false\ninvites_api_rate_per_ip = false\n` +
      `VirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api" }\n`,
  );
  const db = path.join(data, "prosody.sqlite");
  const acked = { keys: [] as string[], invites: [] as string[] };
  const apiKey = (await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir })).stdout.trim();
  assert.match(apiKey, /^[^/]+\/./);
  acked.keys.push(apiKey.split("/")[0]!);

  const attackMs = 60_000;
  // What the old code locked: the database file; the internal driver's files of the invite stores.
  const host = path.join(data, "example%2ecom");
  const lockKeys = storage === "sql" ? [db] : ["invite_token", "invite_api_keys"].map((s) => `internal:${host}/${s}.dat`);
  const attacker = spawn(process.execPath, ["--input-type=module", "-e", ATTACKER, data, String(attackMs), db, ...lockKeys], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: "/",
    stdio: ["ignore", "pipe", "pipe"],
  });
  let attackOut = "";
  let attackErr = "";
  attacker.stdout!.setEncoding("utf8").on("data", (d: string) => (attackOut += d));
  attacker.stderr!.setEncoding("utf8").on("data", (d: string) => (attackErr += d));
  const attackerDone = new Promise((r) => attacker.on("close", r));
  let server = startServer(config, dir);
  try {
    await sleep(300); // the attacker is in place
    acked.invites.push(await waitUp(port, apiKey));

    // Under attack: 4 HTTP writers and 2 CLI writers at once; each write must finish promptly.
    const until = Date.now() + 4000;
    const httpLoop = async () => {
      while (Date.now() < until) acked.invites.push(await apiInvite(port, apiKey));
    };
    const cliLoop = async () => {
      for (let i = 0; i < 2; i++) acked.keys.push(await cliKey(config, dir));
    };
    await Promise.all([httpLoop(), httpLoop(), httpLoop(), httpLoop(), cliLoop(), cliLoop()]);
    assert.ok(acked.invites.length > 10, `${acked.invites.length} invites created under attack`);

    // kill -9 of the server in the middle of writes: the CLI is not blocked by its lock.
    const inflight = Array.from({ length: 8 }, () => apiInvite(port, apiKey).then((t) => acked.invites.push(t), () => {}));
    await sleep(Math.floor(random() * 20));
    server.proc.kill("SIGKILL");
    await server.exited;
    await Promise.all(inflight);
    const t0 = Date.now();
    acked.keys.push(await cliKey(config, dir));
    console.log(`  (CLI write ${Date.now() - t0} ms after the server's kill -9, process start included)`);

    // A clean stop folds the journal (SQLite), whatever markers the attacker faked.
    server = startServer(config, dir);
    acked.invites.push(await waitUp(port, apiKey));
    server.proc.kill("SIGTERM");
    await server.exited;
    if (storage === "sql") assert.not.ok(fs.existsSync(`${db}.sqljs-journal`), "the journal was folded at the clean stop");
    const { keys, invites } = await stored(storage, data);
    for (const k of acked.keys) assert.ok(keys.has(k), `acknowledged key ${k} is stored`);
    for (const t of acked.invites) assert.ok(invites.has(t), `acknowledged invite ${t} is stored`);
    console.log(`  (${storage}: ${acked.invites.length} invites and ${acked.keys.length} keys acknowledged under attack, all stored)`);
  } finally {
    server.proc.kill("SIGKILL");
    attacker.kill("SIGTERM");
    await attackerDone;
  }
  // What the attacker could do: nothing in our lock directory.
  const stats = attackOut
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { what: string; tries: number; ok: number; codes: Record<string, number> });
  assert.ok(stats.length > 0, `the attacker reported (stderr: ${attackErr})`);
  const byWhat = new Map(stats.map((s) => [s.what, s]));
  const tried = ["list lock dir", "create file in lock dir", "replace lock dir", "create in data dir", "bind in lock dir", "connect via /proc/<pid>"];
  // (with the long data path, our socket paths show as /proc/self/fd/<fd>/… only)
  if (storage === "sql") tried.push("connect to a socket path");
  for (const what of tried) {
    const s = byWhat.get(what);
    assert.ok(s && s.tries > 0, `the attacker tried: ${what}`);
    assert.is(s!.ok, 0, `${what}: ${JSON.stringify(s)}`);
  }
  for (const s of stats) if (!s.what.startsWith("abstract")) assert.is(s.ok, 0, `${s.what}: ${JSON.stringify(s)}`);
  console.log(`  (attacker: ${stats.map((s) => `${s.what} ${s.ok}/${s.tries} ok`).join("; ")})`);
}

test("as nobody, against sql storage: locks and open markers cannot be taken, blocked or faked; writes go on; kill -9 releases", async (ctx) => {
  if (!isRoot) return skip(ctx, "needs root (to run the attacker as uid 65534)");
  await attackRun("sql");
});

test("as nobody, against internal storage: the per-file locks cannot be taken or blocked; writes go on; kill -9 releases", async (ctx) => {
  if (!isRoot) return skip(ctx, "needs root (to run the attacker as uid 65534)");
  await attackRun("internal");
});

test("as nobody: fake \"still open\" markers do not stop prosodyctl from folding the journal on exit", async (ctx) => {
  if (!isRoot) return skip(ctx, "needs root (to run the attacker as uid 65534)");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-lock-attack-"));
  process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  const data = path.join(dir, "data");
  fs.mkdirSync(data, { mode: 0o755 });
  fs.chmodSync(data, 0o755);
  const config = path.join(dir, "prosody.cfg.lua");
  fs.writeFileSync(config, `run_as_root = true\ndata_path = "${data}"\nstorage = "sql"\nVirtualHost "example.com"\n`);
  const db = path.join(data, "prosody.sqlite");
  const first = await cliKey(config, dir); // creates the database (and our lock directory)
  // Markers only: no lock grabbing.
  const attacker = spawn(process.execPath, ["--input-type=module", "-e", ATTACKER, data, "30000", db], { uid: NOBODY, gid: NOBODY, cwd: "/", stdio: ["ignore", "pipe", "inherit"] });
  const closed = new Promise((r) => attacker.on("close", r));
  try {
    await new Promise<void>((resolve, reject) => {
      attacker.stdout!.setEncoding("utf8").on("data", (d: string) => d.includes("ready") && resolve());
      void closed.then(() => reject(new Error("the attacker exited early")));
    });
    const second = await cliKey(config, dir);
    assert.not.ok(fs.existsSync(`${db}.sqljs-journal`), "prosodyctl alone folded the journal on exit");
    assert.equal((await rowsInFile(db, "invite_api_keys")).sort(), [first, second].sort());
  } finally {
    attacker.kill("SIGKILL");
    await closed;
  }
});

test.run();
