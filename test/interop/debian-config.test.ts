/**
 * The interop flow on Debian's stock /etc/prosody/prosody.cfg.lua (with its conf.d), copied to a
 * temporary directory with only paths and ports rewritten (pidfile, log files, data_path, the
 * listening ports on loopback; `certificates = "certs"` is kept and a self-signed certificate for
 * localhost is put there), plus the invite modules enabled on its host "localhost" (and
 * `invites_api_plaintext_keys`, so Prosody's /invites_api takes keys made by ours). Real Prosody
 * (`prosody -F` as the prosody user) and ours (`prosodyctl start`) run on the same data (internal
 * storage, Debian's default); keys, invites and accounts cross over both ways, with both
 * prosodyctls. Logins go to real Prosody over XMPP with STARTTLS (the stock config requires
 * encryption) and SCRAM-SHA-1. Every test passes --config explicitly.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync, execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prosodyctl, PROSODYCTL, type Ran } from "../helpers/cli.js";
import { freePort, rawRequest, waitForHttp } from "../helpers/http.js";
import { luaLoadDataFile, prosodyMissing } from "../helpers/prosody.js";
import { scramLogin } from "../helpers/xmpp.js";
import { skip } from "../helpers/skip.js";

const STOCK = "/etc/prosody/prosody.cfg.lua";
const HOST = "localhost";
const KEY = /^([A-Za-z0-9_-]{12})\/([A-Za-z0-9_-]{36})$/;

function whyMissing(): string | undefined {
  const m = prosodyMissing();
  if (m) return m;
  if (!existsSync(STOCK)) return `${STOCK} not found (Debian's prosody package)`;
  if (spawnSync("sh", ["-c", "command -v openssl"]).status !== 0) return "openssl not found (to make the test certificate)";
  return undefined;
}
const missing = whyMissing();

interface Setup {
  dir: string;
  config: string;
  ours: string;
  prosodyPort: number;
  ourPort: number;
  c2sPort: number;
}
let s: Setup | undefined;
let prosody: ChildProcess | undefined;
let ours: ChildProcess | undefined;

/** Replaces `from` by `to` in `text`, failing loudly when Debian's file no longer has it. */
function rewrite(text: string, from: string | RegExp, to: string): string {
  const next = text.replace(from, to);
  assert.ok(next !== text, `the stock config no longer contains ${from}`);
  return next;
}

async function setUp(): Promise<Setup> {
  const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
  const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
  const dir = mkdtempSync(join(tmpdir(), "interop-debian-"));
  chmodSync(dir, 0o755);
  for (const sub of ["data", "certs", "conf.d"]) mkdirSync(join(dir, sub));
  for (const f of readdirSync("/etc/prosody/conf.d").filter((f) => f.endsWith(".cfg.lua"))) copyFileSync(join("/etc/prosody/conf.d", f), join(dir, "conf.d", f));
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${HOST}`, "-keyout", join(dir, "certs", `${HOST}.key`), "-out", join(dir, "certs", `${HOST}.crt`)], { stdio: "ignore" });
  const [prosodyPort, ourPort, c2sPort] = [await freePort(), await freePort(), await freePort()];

  let text = readFileSync(STOCK, "utf8");
  text = rewrite(text, `pidfile = "/run/prosody/prosody.pid"`, `pidfile = "${dir}/prosody.pid"`);
  text = rewrite(text, /\/var\/log\/prosody\//g, `${dir}/`);
  text = rewrite(
    text,
    /^VirtualHost "localhost"$/m,
    `-- paths and ports of this test
data_path = "${dir}/data"
http_ports = { ${prosodyPort} }
http_interfaces = { "127.0.0.1" }
https_ports = { }
c2s_ports = { ${c2sPort} }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }

VirtualHost "localhost"`,
  );
  text += `
-- the invite modules
VirtualHost "localhost"
modules_enabled = { "http", "invites_api", "invites_page", "register_apps" }
invites_api_plaintext_keys = true
`;
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, text);
  // Our server: the same config, its own HTTP port, and the web registration Prosody lacks here.
  const ourConfig = join(dir, "ours.cfg.lua");
  writeFileSync(ourConfig, `Include "prosody.cfg.lua"\nhttp_ports = { ${ourPort} }\nmodules_enabled = { "invites_register_web", "password_policy" }\n`);
  for (const p of [dir, join(dir, "data"), join(dir, "certs"), join(dir, "conf.d"), join(dir, "certs", `${HOST}.key`), join(dir, "certs", `${HOST}.crt`)]) chownSync(p, uid, gid);
  return { dir, config, ours: ourConfig, prosodyPort, ourPort, c2sPort };
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const done = new Promise((r) => child.on("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 10000);
  await done;
  clearTimeout(t);
}

test.before(async () => {
  if (missing) return;
  s = await setUp();
  prosody = spawn("runuser", ["-u", "prosody", "--", "prosody", "--config", s.config, "-F"], { cwd: s.dir, stdio: "ignore" });
  const log = join(s.dir, "prosody.log");
  await waitForHttp(s.prosodyPort, "Prosody", () => (existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : ""));
  ours = spawn(process.execPath, [PROSODYCTL, "--config", s.ours, "--quiet", "start"], { cwd: s.dir, stdio: "ignore" });
  await waitForHttp(s.ourPort, "prosody-ts");
});
test.after(async () => {
  await stop(prosody);
  await stop(ours);
});

const realCtl = (args: string[], input?: string): Ran => {
  const r = spawnSync("prosodyctl", ["--config", s!.config, ...args], { cwd: s!.dir, encoding: "utf8", input });
  return { stdout: r.stdout, stderr: r.stderr, code: r.status };
};
const ourCtl = (args: string[], input?: string) => prosodyctl(["--config", s!.config, ...args], { cwd: s!.dir, input });
const get = (port: number, target: string) => rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
const lastLine = (t: string) => t.trim().split("\n").pop() ?? "";
const tokenOf = (location: string) => /[?=]([A-Za-z0-9_-]{24})$/.exec(location)![1]!;

/** Prosody's landing page marks a valid invite with a Link header naming its xmpp: URI. */
async function prosodyAccepts(token: string): Promise<boolean> {
  const r = await get(s!.prosodyPort, `/invites_page?${token}`);
  return r.status === 200 && (r.header("link") ?? "").includes(`preauth=${token}`);
}
async function oursAccepts(token: string): Promise<boolean> {
  const r = await ourCtl(["mod_invites", "show", HOST, token]);
  return r.code === 0 && JSON.parse(r.stdout).token === token;
}

test("Debian's stock config: an API key made by either prosodyctl works on both servers", async (ctx) => {
  if (!s) return skip(ctx, missing);
  const ourKey = (await ourCtl(["mod_invites_api", "create", HOST, "by ours"])).stdout.trim();
  assert.match(ourKey, KEY);
  const realKey = lastLine(realCtl(["mod_invites_api", "create", HOST, "by prosody"]).stdout);
  assert.match(realKey, KEY);
  for (const key of [ourKey, realKey]) {
    for (const port of [s.prosodyPort, s.ourPort]) {
      const r = await get(port, `/invites_api?key=${key}`);
      assert.is(r.status, 201, `key ${key.split("/")[0]} on ${port === s.ourPort ? "ours" : "Prosody"}`);
      const token = tokenOf(r.header("location")!);
      assert.ok(await prosodyAccepts(token), "Prosody accepts the invite");
      assert.ok(await oursAccepts(token), "ours accepts the invite");
    }
  }
  for (const list of [(await ourCtl(["mod_invites_api", "list", HOST])).stdout, realCtl(["mod_invites_api", "list", HOST]).stdout]) {
    assert.match(list, `${ourKey.split("/")[0]}\tby ours`);
    assert.match(list, `${realKey.split("/")[0]}\tby prosody`);
  }
});

test("Debian's stock config: mod_invites generate by either prosodyctl makes an invite both accept", async (ctx) => {
  if (!s) return skip(ctx, missing);
  const theirs = realCtl(["mod_invites", "generate", HOST]);
  assert.is(theirs.code, 0, theirs.stdout + theirs.stderr);
  const mine = await ourCtl(["mod_invites", "generate", HOST]);
  assert.is(mine.code, 0, mine.stdout + mine.stderr);
  for (const out of [theirs.stdout, mine.stdout]) {
    const token = /([A-Za-z0-9_-]{24})\s*$/.exec(out)![1]!;
    assert.ok(await prosodyAccepts(token), `Prosody accepts ${out.trim()}`);
    assert.ok(await oursAccepts(token), `ours accepts ${out.trim()}`);
  }
});

test("Debian's stock config: accounts — our web form's account logs in to Prosody (STARTTLS + SCRAM); Prosody's adduser account is ours", async (ctx) => {
  if (!s) return skip(ctx, missing);
  const token = (await ourCtl(["mod_invites", "generate", HOST])).stdout.trim().split("preauth=")[1]!;
  const body = new URLSearchParams({ user: "debweb", password: "stock config 1", token }).toString();
  const r = await rawRequest(
    s.ourPort,
    `POST /register?t=${token} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  assert.is(r.status, 200);
  assert.match(r.body.toString(), "Congratulations!");
  const record = luaLoadDataFile(join(s.dir, "data", HOST, "accounts", "debweb.dat")) as Record<string, unknown>;
  assert.equal(Object.keys(record).sort(), ["iteration_count", "salt", "server_key", "stored_key"]);
  assert.equal(await scramLogin(s.c2sPort, HOST, "debweb", "stock config 1", 10000, { starttls: true }), { ok: true });
  assert.equal((await scramLogin(s.c2sPort, HOST, "debweb", "wrong", 10000, { starttls: true })).ok, false);

  const add = realCtl(["adduser", `debreal@${HOST}`], "real pass 22\nreal pass 22\n");
  assert.is(add.code, 0, add.stdout + add.stderr);
  const again = await ourCtl(["adduser", `debreal@${HOST}`], "x pass 333\nx pass 333\n");
  assert.is(again.code, 1);
  assert.match(again.stdout, "That user already exists");
  const passwd = await ourCtl(["passwd", `debreal@${HOST}`], "new pass 4444\nnew pass 4444\n");
  assert.is(passwd.code, 0, passwd.stdout + passwd.stderr);
  assert.equal(await scramLogin(s.c2sPort, HOST, "debreal", "new pass 4444", 10000, { starttls: true }), { ok: true });
  const del = realCtl(["deluser", `debweb@${HOST}`]);
  assert.is(del.code, 0, del.stdout + del.stderr);
  assert.not.ok(existsSync(join(s.dir, "data", HOST, "accounts", "debweb.dat")));
});

test("Debian's stock config: our prosodyctl check finds the copied config sound", async (ctx) => {
  if (!s) return skip(ctx, missing);
  const r = await ourCtl(["check"]);
  assert.is(r.code, 0, r.stdout);
  assert.match(r.stdout, `    ${HOST}: serves invites, invites_register, http, invites_api, invites_page, register_apps\n`);
  assert.match(r.stdout, /Left to Prosody \(XMPP modules this host does not serve\): posix, disco, roster, saslauth, tls,/);
});

test.run();
