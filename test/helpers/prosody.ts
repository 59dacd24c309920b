/**
 * A private instance of the real Prosody 0.12 (Debian package) for interop tests: its own config
 * and data under a temporary directory owned by the `prosody` user, loopback ports chosen by the
 * test, run with `runuser -u prosody -- prosody -F` (never the system service), stopped by the test.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { freePort, rawRequest, waitForHttp, type RawResponse } from "./http.js";
import { prosodyctl as ourCtl, type Ran } from "./cli.js";

/** Why real Prosody can't be used here, or undefined when it can. */
export function prosodyMissing(): string | undefined {
  if (process.getuid?.() !== 0) return "interop tests need root (to run Prosody as the prosody user)";
  for (const cmd of ["prosody", "prosodyctl", "runuser", "lua5.4"]) {
    if (spawnSync("sh", ["-c", `command -v ${cmd}`]).status !== 0) return `${cmd} not found (apt install prosody prosody-modules lua-dbi-sqlite3)`;
  }
  if (!existsSync("/usr/lib/prosody/modules/mod_invites_api/mod_invites_api.lua")) return "prosody-modules not installed";
  if (spawnSync("sh", ["-c", "id -u prosody"]).status !== 0) return "no prosody user";
  return undefined;
}

export interface Instance {
  dir: string;
  /** The shared config, read by real Prosody and by our processes. */
  config: string;
  /** Our server's config: the shared one plus its own HTTP port. */
  ourConfig: string;
  prosodyPort: number;
  ourPort: number;
  /** Real Prosody's client port (plain TCP, SASL allowed without TLS). */
  c2sPort: number;
  startProsody(): Promise<void>;
  stopProsody(): Promise<void>;
  /** Runs the real prosodyctl (as root; it switches to the prosody user itself). */
  realCtl(args: string[], input?: string): Ran;
  /** Runs our prosodyctl with the shared config (as root; it switches to the prosody user). */
  ourCtl(args: string[], input?: string): Promise<Ran>;
  startOurs(): Promise<void>;
  stopOurs(): Promise<void>;
  get(port: number, target: string, headers?: Record<string, string>): ReturnType<typeof rawRequest>;
  cleanup(): Promise<void>;
}

/**
 * @param extraModules loaded by both (e.g. "saslauth" for real Prosody's logins)
 * @param ourModules loaded by our server only (modules real Prosody lacks here)
 * @param extraGlobal more lines for the shared config's global section (e.g. `authentication = …`)
 */
export async function createInstance(storage: "internal" | "sql", extraModules: string[] = [], ourModules: string[] = [], extraGlobal = ""): Promise<Instance> {
  const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
  const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
  const dir = mkdtempSync(join(tmpdir(), `interop-${storage}-`));
  chmodSync(dir, 0o755);
  for (const sub of ["data", "certs"]) mkdirSync(join(dir, sub));
  const [prosodyPort, ourPort, c2s] = [await freePort(), await freePort(), await freePort()];
  const modules = ["http", "invites", "invites_api", "invites_page", "register_apps", ...extraModules];
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(
    config,
    `-- shared by the real Prosody and by prosody-ts in this test
pidfile = "${dir}/prosody.pid"
data_path = "${dir}/data"
certificates = "${dir}/certs"
log = { warn = "${dir}/prosody.log" }
http_ports = { ${prosodyPort} }
http_interfaces = { "127.0.0.1" }
https_ports = {}
c2s_ports = { ${c2s} }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = {}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
invites_api_plaintext_keys = true
storage = "${storage}"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
modules_enabled = { ${modules.map((m) => JSON.stringify(m)).join(", ")} }
${extraGlobal}
VirtualHost "example.com"
`,
  );
  const ourConfig = join(dir, "ours.cfg.lua");
  writeFileSync(
    ourConfig,
    `Include "prosody.cfg.lua"\nhttp_ports = { ${ourPort} }\n` +
      (ourModules.length ? `VirtualHost "example.com"\nmodules_enabled = { ${ourModules.map((m) => JSON.stringify(m)).join(", ")} }\n` : ""),
  );
  for (const p of [dir, join(dir, "data"), join(dir, "certs"), config, ourConfig]) chownSync(p, uid, gid);

  let prosody: ChildProcess | undefined;
  let ours: ChildProcess | undefined;
  const stop = async (child: ChildProcess | undefined) => {
    if (!child || child.exitCode !== null) return;
    const done = new Promise((r) => child.on("exit", r));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 10000);
    await done;
    clearTimeout(t);
  };
  const inst: Instance = {
    dir,
    config,
    ourConfig,
    prosodyPort,
    ourPort,
    c2sPort: c2s,
    async startProsody() {
      prosody = spawn("runuser", ["-u", "prosody", "--", "prosody", "--config", config, "-F"], { cwd: dir, stdio: "ignore" });
      await waitForHttp(prosodyPort, "Prosody", () => tail(join(dir, "prosody.log")));
    },
    async stopProsody() {
      await stop(prosody);
      prosody = undefined;
    },
    realCtl(args, input) {
      const r = spawnSync("prosodyctl", ["--config", config, ...args], { cwd: dir, encoding: "utf8", input });
      return { stdout: r.stdout, stderr: r.stderr, code: r.status };
    },
    ourCtl(args, input) {
      return ourCtl(["--config", config, ...args], { cwd: dir, input });
    },
    async startOurs() {
      const { PROSODYCTL } = await import("./cli.js");
      ours = spawn(process.execPath, [PROSODYCTL, "--config", ourConfig, "--quiet", "start"], { cwd: dir, stdio: "ignore" });
      await waitForHttp(ourPort, "prosody-ts");
    },
    async stopOurs() {
      await stop(ours);
      ours = undefined;
    },
    get(port, target, headers = {}) {
      const h = Object.entries({ Host: "example.com", ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      return rawRequest(port, `GET ${target} HTTP/1.1\r\n${h}\r\n`);
    },
    async cleanup() {
      await stop(prosody);
      await stop(ours);
    },
  };
  return inst;
}

/** Loads a Prosody data file with Prosody's own Lua (empty environment) and returns it as JSON. */
export function luaLoadDataFile(file: string): unknown {
  const script = `
package.path = "/usr/lib/prosody/?.lua;" .. package.path
local json = require "util.json"
local f, err = loadfile(arg[1], "t", {})
if not f then io.stderr:write(err) os.exit(2) end
io.write(json.encode(f()))`;
  const r = spawnSync("lua5.4", ["-", file], { input: script, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`lua5.4 could not load ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The last 2000 characters of a log file, or "" when it does not exist. */
function tail(logFile: string | undefined): string {
  return logFile && existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "";
}

/**
 * Registers `user` on our web form with a fresh invite: a key from our prosodyctl, an invite from
 * our API (asserted 201), then the form's POST. Resolves with the form's answer.
 */
export async function registerOnOurForm(i: Instance, user: string, password: string): Promise<RawResponse> {
  const key = (await i.ourCtl(["mod_invites_api", "create", "example.com"])).stdout.trim();
  const created = await i.get(i.ourPort, `/invites_api?key=${key}`);
  assert.is(created.status, 201);
  const token = /[?=]([A-Za-z0-9_-]{24})$/.exec(created.header("location")!)![1]!;
  const body = new URLSearchParams({ user, password, token }).toString();
  return rawRequest(
    i.ourPort,
    `POST /register?t=${token} HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
