/**
 * Issue 13, "lifecycle like a daemon": `prosodyctl start` as a real process that cannot do its job
 * (a port in use, an address it cannot bind, a config enabling nothing this host serves, stray
 * arguments) exits 1 with one line saying why, instead of logging and exiting 0.
 */
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl, tempConfig, type Ran } from "../helpers/cli.js";
import { freePort } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";

const STOCK = "/etc/prosody/prosody.cfg.lua";
const INVITES = `modules_enabled = { "invites", "invites_api", "invites_page" }\nVirtualHost "example.com"\n`;

/** The lines of stderr that are not log records (those carry an ISO timestamp). */
const plainLines = (r: Ran): string[] => r.stderr.split("\n").filter((l) => l !== "" && !/^\d{4}-\d\d-\d\dT/.test(l));

/** start, killed after `ms` if it is still running (the old behaviour for some of these cases). */
async function startFor(args: string[], cwd: string, ms = 15_000): Promise<Ran> {
  const { spawn } = await import("node:child_process");
  const { PROSODYCTL } = await import("../helpers/cli.js");
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [PROSODYCTL, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolveRun({ stdout, stderr, code: code ?? (signal ? -1 : null) });
    });
  });
}

test("a port already in use: exit 1, one line naming the address, the port and the options; no 'Activated host'", async () => {
  const port = await freePort();
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(port, "127.0.0.1", r));
  try {
    const { dir, config } = tempConfig(`data_path = "$DIR/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\n${INVITES}`);
    const r = await startFor(["--config", config, "start"], dir);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.equal(plainLines(r), [
      `Failed to start: Cannot listen on 127.0.0.1 port ${port} (http_ports, http_interfaces): address already in use (EADDRINUSE): another server, or another copy of this one, has it`,
    ]);
    assert.not.match(r.stderr, "Activated host");
    assert.not.match(r.stderr, " error\t", "reported once, not also logged as a module error");
  } finally {
    blocker.close();
  }
});

test("an address this machine does not have stops the start even when another interface was bound, and frees that one", async () => {
  const port = await freePort();
  const { dir, config } = tempConfig(`data_path = "$DIR/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1", "192.0.2.1" }\n${INVITES}`);
  const r = await startFor(["--config", config, "start"], dir);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.equal(plainLines(r), [
    `Failed to start: Cannot listen on 192.0.2.1 port ${port} (http_ports, http_interfaces): address not available (EADDRNOTAVAIL): no interface of this machine has it`,
  ]);
  // The port bound on 127.0.0.1 before the failure was released: binding it again works.
  const again = createServer();
  await new Promise<void>((r2, reject) => again.once("error", reject).listen(port, "127.0.0.1", r2));
  again.close();
});

test("Debian's stock prosody.cfg.lua (copied, paths rewritten): exit 1 with a plain line; the XMPP modules in one summary line", async (ctx) => {
  try {
    accessSync(STOCK, constants.R_OK);
  } catch {
    return skip(ctx, `${STOCK} is not readable here (install the prosody package)`);
  }
  const { dir } = tempConfig("");
  const config = join(dir, "prosody.cfg.lua");
  copyFileSync(STOCK, config);
  mkdirSync(join(dir, "conf.d"));
  const text = readFileSync(config, "utf8")
    .replace(/^plugin_paths\s*=.*$/m, "")
    .replaceAll("/var/log/prosody/", `${dir}/`)
    .replaceAll("/run/prosody/", `${dir}/`);
  // Only the paths change: data into the temp dir, root kept (the temp dir is root's).
  writeFileSync(config, `run_as_root = true\ndata_path = "${dir}/data"\n${text}`);
  const r = await startFor(["--config", config, "start"], dir);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.equal(plainLines(r), [
    "Failed to start: Nothing to serve: no module enabled on any host offers an HTTP page or API " +
      "(enable invites with invites_page, invites_register_web, register_apps or invites_api in modules_enabled; XMPP modules stay with Prosody)",
  ]);
  // The stock config logs to files (their paths rewritten into the temp dir), as Prosody would.
  const log = readFileSync(join(dir, "prosody.log"), "utf8");
  const summary = log.split("\n").filter((l) => l.includes("this host does not implement"));
  assert.is(summary.length, 1, log);
  assert.match(summary[0]!, /\tinfo\tSkipped 24 module\(s\) this host does not implement \(XMPP modules stay with Prosody\): posix, disco, roster, /);
  assert.not.match(log, "is not implemented by this host", "details only at debug level");
  assert.not.match(log, "\twarn\t");
});

test("start with extra words or an unknown option is an error with exit 1 (it was the help listing, exit 0)", async () => {
  const { dir, config } = tempConfig(INVITES);
  const extra = await prosodyctl(["--config", config, "start", "now"], { cwd: dir });
  assert.is(extra.code, 1, extra.stdout + extra.stderr);
  assert.is(extra.stderr, "start: unexpected argument 'now'\nUsage: prosodyctl [--config FILE | --embedded-config] start\n");
  const after = await prosodyctl(["start", "--conifg", config], { cwd: dir });
  assert.is(after.code, 1, after.stdout + after.stderr);
  assert.is(after.stderr, "start: unknown option --conifg (options go before the command)\nUsage: prosodyctl [--config FILE | --embedded-config] start\n");
  const before = await prosodyctl(["--conifg", config, "start"], { cwd: dir });
  assert.is(before.code, 1, before.stdout + before.stderr);
  assert.is(before.stdout, "Unknown command-line option: --conifg\n");
  assert.not.ok(existsSync(join(dir, "data")), "nothing was started");
});

test("--version prints which program this is and which Prosody it follows; -v is still verbose, as in Prosody", async () => {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
  const r = await prosodyctl(["--version"]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `prosody-ts ${pkg.version} (Prosody 0.12.3-compatible plugin host; Node.js ${process.version})\n`);
  const { dir, config } = tempConfig(INVITES);
  const verbose = await prosodyctl(["-v", "--config", config, "about"], { cwd: dir });
  assert.is(verbose.code, 0, verbose.stderr);
  assert.match(verbose.stdout, /^prosody-ts /);
  assert.match(verbose.stderr, "debug\t", "-v turns debug logging on");
});

test.run();
