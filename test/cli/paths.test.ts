/**
 * Issue 13, deployment parity: where prosodyctl finds its config and paths on a machine with
 * Prosody installed, what `about` says about each path, the start command of the README, the
 * global bin name, and what start prints once it serves. Real processes throughout.
 */
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PROSODYCTL, prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";

const ROOT = resolve(import.meta.dirname, "../..");
const PKG = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const STOCK = "/etc/prosody/prosody.cfg.lua";

/** A fake system install: <dir>/etc/prosody.cfg.lua, found through PROSODY_TS_SYSTEM_CONFIG. */
function fakeSystem(body: string): { dir: string; cwd: string; system: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-sys-"));
  mkdirSync(join(dir, "etc"));
  mkdirSync(join(dir, "work"));
  const system = join(dir, "etc", "prosody.cfg.lua");
  writeFileSync(system, `run_as_root = true\n${body}`);
  return { dir, cwd: join(dir, "work"), system, env: { PROSODY_TS_SYSTEM_CONFIG: system } };
}

/** Runs `args` until `text` shows in its output (or it exits), then SIGTERM; resolves with all output and the code. */
function runUntil(argv: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }, text: string | RegExp, ms = 20_000): Promise<{ out: string; stdout: string; code: number | null }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, argv, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let stdout = "";
    const check = () => {
      if (typeof text === "string" ? out.includes(text) : text.test(out)) child.kill("SIGTERM");
    };
    child.stdout.setEncoding("utf8").on("data", (d) => ((out += d), (stdout += d), check()));
    child.stderr.setEncoding("utf8").on("data", (d) => ((out += d), check()));
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("close", (code) => (clearTimeout(timer), resolveRun({ out, stdout, code })));
  });
}

test("with no local config the system config is used, with Debian's default paths; about names each path and its origin", async () => {
  const { cwd, system, env, dir } = fakeSystem(`certificates = "certs"\nplugin_paths = { "/nonexistent/lua" }\nVirtualHost "example.com"\n`);
  const r = await prosodyctl(["about"], { cwd, env: { ...env, PROSODY_TS_DATA_DIR: join(dir, "var") } });
  assert.is(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.split("\n");
  assert.match(lines[0]!, /^prosody-ts \S+ \(Prosody 0\.12\.3-compatible plugin host; Node\.js v/);
  assert.ok(lines.includes(`Config file:        ${system} (the system config)`), r.stdout);
  assert.ok(lines.includes(`Config directory:   ${join(dir, "etc")} (the directory of the config file)`), r.stdout);
  assert.ok(lines.includes(`Data directory:     ${join(dir, "var")} ($PROSODY_TS_DATA_DIR)`), r.stdout);
  assert.ok(lines.includes(`Certificates:       ${join(dir, "etc", "certs")} - not a directory! (option certificates)`), r.stdout);
  assert.ok(lines.includes(`  /nonexistent/lua - not a directory! (option plugin_paths; JavaScript plugins only)`), r.stdout);
  assert.ok(lines.includes(`  ${join(ROOT, "dist", "plugins")} (bundled with prosody-ts)`), r.stdout);
  assert.ok(lines.includes(`Prosody's modules:  /usr/lib/prosody/modules${existsSync("/usr/lib/prosody/modules") ? "" : " - not a directory!"} (the default for a config in ${join(dir, "etc")}; Lua, used by Prosody only)`), r.stdout);
  assert.ok(lines.includes(`Source directory:   ${ROOT} (this package)`), r.stdout);

  // Without the environment override the data directory is Debian's (kept as root, a
  // directory owned by prosody is refused: that is the trust rule of src/cli/trust.ts at work).
  const debian = await prosodyctl(["about"], { cwd, env });
  assert.match(debian.stdout + debian.stderr, existsSync("/var/lib/prosody") ? "/var/lib/prosody" : "Data directory:     /var/lib/prosody");
  // A ./prosody.cfg.lua still comes first, with ./data.
  writeFileSync(join(cwd, "prosody.cfg.lua"), `run_as_root = true\nVirtualHost "local.example"\n`);
  const local = await prosodyctl(["about"], { cwd, env });
  assert.match(local.stdout, `Config file:        ${join(cwd, "prosody.cfg.lua")} (found in the working directory)`);
  assert.match(local.stdout, `Data directory:     ${join(cwd, "data")} (the default: ./data in the working directory)`);
  assert.not.match(local.stdout, "Prosody's modules:");
});

test("on this machine (Debian's Prosody installed), about with no config finds /etc/prosody/prosody.cfg.lua and /var/lib/prosody", async (ctx) => {
  try {
    accessSync(STOCK, constants.R_OK);
  } catch {
    return skip(ctx, `${STOCK} is not readable here (install the prosody package; run as root)`);
  }
  const cwd = mkdtempSync(join(tmpdir(), "prosody-ts-sys-"));
  const env = { ...process.env };
  delete env.PROSODY_TS_SYSTEM_CONFIG;
  delete env.PROSODY_CONFIG;
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
    const c = spawnSync(process.execPath, [PROSODYCTL, "about"], { cwd, env, encoding: "utf8" });
    res({ code: c.status, stdout: c.stdout, stderr: c.stderr });
  });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, `Config file:        ${STOCK} (the system config)`);
  assert.match(r.stdout, "Config directory:   /etc/prosody (the directory of the config file)");
  assert.match(r.stdout, "Data directory:     /var/lib/prosody (the default for a config in /etc/prosody)");
  assert.match(r.stdout, "Certificates:       /etc/prosody/certs (option certificates)");
  assert.match(r.stdout, "Prosody's modules:  /usr/lib/prosody/modules (the default for a config in /etc/prosody; Lua, used by Prosody only)");
  // Real prosodyctl agrees on the directories.
  const real = spawnSync("prosodyctl", ["about"], { cwd, encoding: "utf8" });
  if (real.status === 0) {
    assert.match(real.stdout, "Data directory:     /var/lib/prosody");
    assert.match(real.stdout, "Config directory:   /etc/prosody");
  }
});

test("the README's start command names the embedded default, so a system config does not take over (issue 13)", async () => {
  // (With the server's Node options: server-node-flags.test.ts.)
  assert.match(PKG.scripts.start, /^node (--\S+ )*scripts\/start\.mjs$/);
  const script = readFileSync(join(ROOT, "scripts", "start.mjs"), "utf8");
  assert.match(script, `"--embedded-config", "start"`);
  // The same command line against a machine where a system config exists.
  const { cwd, env } = fakeSystem(`VirtualHost "system.example"\n`);
  const r = await runUntil([PROSODYCTL, "--embedded-config", "start"], { cwd, env }, /Failed to start|Next steps|Activated host/);
  assert.match(r.out, "using the embedded default config (from --embedded-config)");
  assert.not.match(r.out, "system.example");
  // Without the flag, the system config is the one used.
  const plain = await runUntil([PROSODYCTL, "start"], { cwd, env: { ...env, PROSODY_TS_DATA_DIR: join(cwd, "data") } }, /Failed to start|Activated host/);
  assert.match(plain.out, "(the system config)");
});

test("npm start's build is quiet and makes no type declarations; npm run build still makes them", async () => {
  const out = mkdtempSync(join(tmpdir(), "prosody-ts-build-"));
  const tsup = join(ROOT, "node_modules", "tsup", "dist", "cli-default.js");
  const quick = spawnSync(process.execPath, [tsup, "--silent", "--out-dir", out], { cwd: ROOT, env: { ...process.env, PROSODY_TS_BUILD: "quick" }, encoding: "utf8" });
  assert.is(quick.status, 0, quick.stderr);
  assert.is(quick.stdout + quick.stderr, "", "no output");
  assert.ok(existsSync(join(out, "cli.js")));
  assert.is(readdirSync(out).filter((f) => f.endsWith(".d.ts")).length, 0);
  assert.ok(existsSync(join(ROOT, "dist", "index.d.ts")) || process.env.npm_lifecycle_event !== "test", "npm test builds with declarations");
});

test("the global bins are prosodyctl-ts and prosody-migrator-ts (Debian's /usr/bin ones stay Prosody's); usage names the command as run", async () => {
  assert.equal(PKG.bin, { "prosodyctl-ts": "prosodyctl-shim/prosodyctl", "prosody-migrator-ts": "prosodyctl-shim/prosody-migrator" });
  const bin = mkdtempSync(join(tmpdir(), "prosody-ts-bin-"));
  symlinkSync(PROSODYCTL, join(bin, "prosodyctl-ts"));
  const help = spawnSync(process.execPath, [join(bin, "prosodyctl-ts")], { cwd: bin, encoding: "utf8" });
  assert.is(help.status, 0, help.stderr);
  assert.match(help.stdout, "Usage: prosodyctl-ts COMMAND [OPTIONS]");
  const start = spawnSync(process.execPath, [join(bin, "prosodyctl-ts"), "start", "x"], { cwd: bin, encoding: "utf8" });
  assert.is(start.status, 1);
  assert.match(start.stderr, "Usage: prosodyctl-ts [--config FILE | --embedded-config] start");
  const shim = spawnSync(process.execPath, [PROSODYCTL], { cwd: bin, encoding: "utf8" });
  assert.match(shim.stdout, "Usage: prosodyctl COMMAND [OPTIONS]");
  // Like Prosody's migrator, ours names itself as it was run.
  symlinkSync(join(ROOT, PKG.bin["prosody-migrator-ts"]), join(bin, "prosody-migrator-ts"));
  const migrator = spawnSync(process.execPath, [join(bin, "prosody-migrator-ts"), "--help"], { cwd: bin, encoding: "utf8" });
  assert.is(migrator.status, 0, migrator.stderr);
  assert.match(migrator.stdout, `Usage: ${join(bin, "prosody-migrator-ts")} [OPTIONS] FROM_STORE TO_STORE\n`);
});

test("once serving, start prints the URL, the key command and a curl line, and they work as printed", async (ctx) => {
  const port = await freePort();
  const { dir, config } = tempConfig(`data_path = "$DIR/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nlog = "*stderr"\nmodules_enabled = { "invites", "invites_api", "invites_page" }\nVirtualHost "localhost"\n`);
  // Logs on stderr, so that stdout holds the hints alone.
  const child = spawn(process.execPath, [PROSODYCTL, "--config", config, "start"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let all = "";
  child.stdout.setEncoding("utf8").on("data", (d) => ((stdout += d), (all += d)));
  child.stderr.setEncoding("utf8").on("data", (d) => (all += d));
  try {
    const until = Date.now() + 20_000;
    while (!stdout.includes("invite link)") && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const url = `http://localhost:${port}/invites_api`;
    assert.equal(stdout.split("\n"), [
      "",
      `Serving localhost: invites are created at ${url}`,
      "Next steps:",
      `  1. make an API key:    ${PROSODYCTL} --config ${config} mod_invites_api create localhost`,
      `  2. create an invite:   curl -i -X POST -H "Authorization: Bearer KEY" ${url}`,
      "     (KEY is the line step 1 printed; the answer's Location header is the invite link)",
      "",
    ], all);
    const key = spawnSync(process.execPath, [PROSODYCTL, "--config", config, "mod_invites_api", "create", "localhost"], { cwd: dir, encoding: "utf8" });
    assert.is(key.status, 0, key.stderr);
    if (spawnSync("sh", ["-c", "command -v curl"]).status !== 0) return skip(ctx, "curl is not installed; the printed curl line was not run");
    const curlLine = stdout.split("\n")[4]!.replace(/^\s*2\. create an invite:\s*/, "").replace("KEY", key.stdout.trim());
    const res = spawnSync("sh", ["-c", curlLine], { encoding: "utf8" });
    assert.match(res.stdout, /^HTTP\/1\.1 201 /);
    assert.match(res.stdout, /\nLocation: http:\/\/localhost:\d+\/invites_page\?/i, res.stdout);
  } finally {
    child.kill("SIGTERM");
  }
  await new Promise((r) => child.once("close", r));
  // --quiet (as a service unit would run it): serving, but no hints on stdout.
  const quiet = spawn(process.execPath, [PROSODYCTL, "--quiet", "--config", config, "start"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let quietOut = "";
  quiet.stdout.setEncoding("utf8").on("data", (d) => (quietOut += d));
  const closed = new Promise((r) => quiet.once("close", r));
  let served = false;
  for (const until = Date.now() + 20_000; !served && Date.now() < until && quiet.exitCode === null; ) {
    served = await rawRequest(port, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", { timeoutMs: 500 }).then(() => true, () => false);
    if (!served) await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 200));
  quiet.kill("SIGTERM");
  await closed;
  assert.ok(served, "the quiet server served");
  assert.is(quietOut, "");
});

test.run();
