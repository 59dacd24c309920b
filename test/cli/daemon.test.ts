/**
 * `prosodyctl status|stop|restart|reload` against real server processes and a pidfile: Prosody
 * 0.12's messages and exit codes (captured from Debian's prosodyctl), our own pidfile beside
 * Prosody's, and never a signal to a process that is not our server.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PROSODYCTL, prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";

const NO_PIDFILE = "There is no 'pidfile' option in the configuration file, see https://prosody.im/doc/prosodyctl#pidfile for help\n";
const RELOADED = "Prosody log files re-opened and config file reloaded. You may need to reload modules for some changes to take effect.\n";

const BODY = `pidfile = "$DIR/prosody.pid"\nprosodyctl_timeout = 30\nmodules_enabled = { "http", "invites_api" }\nVirtualHost "example.com"\n`;

function ctl(srv: { config: string; dir: string }, ...args: string[]) {
  return prosodyctl(["--config", srv.config, ...args], { cwd: srv.dir });
}

/** A process that lives until killed, with `words` in its command line. */
function dummy(...words: string[]): ChildProcess {
  return spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", ...words], { stdio: "ignore" });
}

/** Running (a zombie waiting for its parent to reap it has exited). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("no pidfile option: status says so (exit 1); stop and reload say not running (exit 1)", async () => {
  const cfg = tempConfig(`VirtualHost "example.com"\n`);
  assert.equal(await ctl(cfg, "status"), { stdout: NO_PIDFILE, stderr: "", code: 1 });
  assert.equal(await ctl(cfg, "stop"), { stdout: "Prosody is not running\n", stderr: "", code: 1 });
  assert.equal(await ctl(cfg, "reload"), { stdout: "Prosody is not running\n", stderr: "", code: 1 });
});

test("not running: status exit 2, stop and reload exit 1, with Prosody's messages", async () => {
  const cfg = tempConfig(BODY);
  assert.equal(await ctl(cfg, "status"), { stdout: "Prosody is not running\n", stderr: "", code: 2 });
  assert.equal(await ctl(cfg, "stop"), { stdout: "Prosody is not running\n", stderr: "", code: 1 });
  assert.equal(await ctl(cfg, "reload"), { stdout: "Prosody is not running\n", stderr: "", code: 1 });
});

test("start writes our own pidfile beside Prosody's name; status, reload, stop act on it; a clean stop removes it", async () => {
  const srv = await startServerProcess(BODY);
  try {
    const ours = join(srv.dir, "prosody-ts.pid");
    assert.is(readFileSync(ours, "utf8"), `${srv.child.pid}\n`);
    assert.not.ok(existsSync(join(srv.dir, "prosody.pid")), "Prosody's pidfile is never written");
    assert.equal(await ctl(srv, "status"), { stdout: `Prosody is running with PID ${srv.child.pid}\n`, stderr: "", code: 0 });
    // Our process is recognisable: its title starts with prosody-ts.
    assert.match(readFileSync(`/proc/${srv.child.pid}/cmdline`, "latin1"), /^prosody-ts --config /);

    assert.is((await rawRequest(srv.port, "GET /invites_page/x HTTP/1.1\r\nHost: example.com\r\n\r\n")).status, 404);
    writeFileSync(srv.config, readFileSync(srv.config, "utf8").replace(`"invites_api" }`, `"invites_api", "invites_page" }`));
    assert.equal(await ctl(srv, "reload"), { stdout: RELOADED, stderr: "", code: 0 });
    await until("the reload", () => srv.output().includes("Configuration reloaded"));
    assert.match(srv.output(), "modules loaded: example.com:invites_page");

    assert.equal(await ctl(srv, "stop"), { stdout: "Stopped\n", stderr: "", code: 0 });
    assert.is(await srv.exited, 0);
    assert.not.ok(existsSync(ours), "removed at the clean stop");
    assert.equal(await ctl(srv, "status"), { stdout: "Prosody is not running\n", stderr: "", code: 2 });
  } finally {
    await srv.stop();
  }
});

test("a second start while one runs is refused (exit 1) and leaves the pidfile alone", async () => {
  const srv = await startServerProcess(BODY);
  try {
    const second = await ctl(srv, "start");
    assert.is(second.code, 1);
    assert.match(second.stdout + second.stderr, `Another Prosody instance seems to be running with PID ${srv.child.pid}, quitting`);
    assert.is(readFileSync(join(srv.dir, "prosody-ts.pid"), "utf8"), `${srv.child.pid}\n`);
    assert.is(srv.child.exitCode, null);
  } finally {
    assert.is(await srv.stop(), 0);
  }
});

test("a stale pidfile (dead pid) reads as not running and is replaced at start", async () => {
  const run = mkdtempSync(join(tmpdir(), "prosody-ts-run-"));
  const body = `prosody_ts_pidfile = "${run}/ts.pid"\n${BODY}`;
  const gone = dummy();
  const deadPid = gone.pid!;
  gone.kill("SIGKILL");
  await until("the dummy to die", () => !alive(deadPid));
  writeFileSync(join(run, "ts.pid"), `${deadPid}\n`);
  const cfg = tempConfig(body);
  assert.equal(await ctl(cfg, "status"), { stdout: "Prosody is not running\n", stderr: "", code: 2 });
  assert.equal(await ctl(cfg, "stop"), { stdout: "Prosody is not running\n", stderr: "", code: 1 });
  const srv = await startServerProcess(body);
  try {
    assert.is(readFileSync(join(run, "ts.pid"), "utf8"), `${srv.child.pid}\n`);
    assert.equal(await ctl(srv, "status"), { stdout: `Prosody is running with PID ${srv.child.pid}\n`, stderr: "", code: 0 });
    assert.not.ok(existsSync(join(srv.dir, "prosody-ts.pid")), "prosody_ts_pidfile wins over the derived name");
  } finally {
    assert.is(await srv.stop(), 0);
  }
  assert.not.ok(existsSync(join(run, "ts.pid")));
});

test("a live process that is not our server is never signalled: status not running, stop exit 1, it lives on", async () => {
  const cfg = tempConfig(BODY);
  const other = dummy("some-other-daemon");
  try {
    await until("the dummy", () => alive(other.pid!));
    writeFileSync(join(cfg.dir, "prosody-ts.pid"), `${other.pid}\n`);
    assert.equal(await ctl(cfg, "status"), { stdout: "Prosody is not running\n", stderr: "", code: 2 });
    assert.equal(await ctl(cfg, "stop"), { stdout: "Prosody is not running\n", stderr: "", code: 1 });
    assert.equal(await ctl(cfg, "reload"), { stdout: "Prosody is not running\n", stderr: "", code: 1 });
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(alive(other.pid!));
  } finally {
    other.kill("SIGKILL");
  }
});

test("a pidfile naming a live Prosody is never replaced: start refuses (exit 1)", async () => {
  const port = await freePort();
  const cfg = tempConfig(`prosody_ts_pidfile = "$DIR/shared.pid"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\n${BODY}`);
  const fake = dummy("/usr/bin/prosody", "-F");
  try {
    await until("the dummy", () => alive(fake.pid!));
    writeFileSync(join(cfg.dir, "shared.pid"), String(fake.pid));
    // Bounded: a start that wrongly goes ahead would serve in the foreground for ever.
    const child = spawn(process.execPath, [PROSODYCTL, "--config", cfg.config, "start"], { cwd: cfg.dir, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 15000);
    const code = await new Promise((r) => child.on("exit", (c, sig) => r(c ?? sig)));
    clearTimeout(timer);
    const r = { code, stdout: out, stderr: "" };
    assert.is(r.code, 1);
    assert.match(r.stdout + r.stderr, `names PID ${fake.pid}`);
    assert.match(r.stdout + r.stderr, "not ours: quitting rather than replacing it (set prosody_ts_pidfile to a file of our own)");
    assert.is(readFileSync(join(cfg.dir, "shared.pid"), "utf8"), String(fake.pid));
    assert.ok(alive(fake.pid!));
  } finally {
    fake.kill("SIGKILL");
  }
});

test("the directory of a derived pidfile missing (Prosody's /run/prosody while it is stopped): a warning, the server runs; of prosody_ts_pidfile: exit 1", async () => {
  const srv = await startServerProcess(`pidfile = "$DIR/no-such-dir/prosody.pid"\nmodules_enabled = { "http", "invites_api" }\nVirtualHost "example.com"\n`);
  try {
    assert.match(srv.output(), `Couldn't write pidfile at ${srv.dir}/no-such-dir/prosody-ts.pid; ENOENT`);
    assert.match(srv.output(), "running without a pidfile");
    assert.is((await rawRequest(srv.port, "GET /invites_api HTTP/1.1\r\nHost: example.com\r\n\r\n")).status, 403);
  } finally {
    assert.is(await srv.stop(), 0);
  }
  const failed = await startServerProcess(`prosody_ts_pidfile = "$DIR/no-such-dir/ts.pid"\nmodules_enabled = { "http" }\nVirtualHost "example.com"\n`).catch((e: Error) => e);
  assert.instance(failed, Error);
  assert.match((failed as Error).message, "server exited before listening");
  assert.match((failed as Error).message, "/no-such-dir/ts.pid; ENOENT");
});

test("restart: stops the running server, starts one in the background, waits for it (Stopped, Started)", async () => {
  const srv = await startServerProcess(BODY);
  let newPid = 0;
  try {
    const r = await ctl(srv, "restart");
    assert.equal(r, { stdout: "Stopped\nStarted\n", stderr: "", code: 0 });
    assert.is(await srv.exited, 0);
    newPid = Number(readFileSync(join(srv.dir, "prosody-ts.pid"), "utf8"));
    assert.ok(newPid > 0 && newPid !== srv.child.pid);
    assert.equal(await ctl(srv, "status"), { stdout: `Prosody is running with PID ${newPid}\n`, stderr: "", code: 0 });
    assert.is((await rawRequest(srv.port, "GET /invites_api HTTP/1.1\r\nHost: example.com\r\n\r\n")).status, 403);
    assert.equal(await ctl(srv, "stop"), { stdout: "Stopped\n", stderr: "", code: 0 });
    assert.not.ok(alive(newPid));
  } finally {
    if (newPid && alive(newPid)) process.kill(newPid, "SIGKILL");
    await srv.stop();
  }
});

test("restart with nothing running starts it (Prosody is not running, Started)", async () => {
  const port = await freePort();
  const cfg = tempConfig(`data_path = "$DIR/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\n${BODY}`);
  const r = await ctl(cfg, "restart");
  const pid = Number(readFileSync(join(cfg.dir, "prosody-ts.pid"), "utf8"));
  try {
    assert.equal(r, { stdout: "Prosody is not running\nStarted\n", stderr: "", code: 0 });
    assert.is((await rawRequest(port, "GET /invites_api HTTP/1.1\r\nHost: example.com\r\n\r\n")).status, 403);
  } finally {
    assert.equal(await ctl(cfg, "stop"), { stdout: "Stopped\n", stderr: "", code: 0 });
    assert.not.ok(alive(pid));
  }
});

test("--help: Prosody's usage lines (restart's exits 1, as Prosody's does)", async () => {
  const cfg = tempConfig(BODY);
  assert.equal(await ctl(cfg, "status", "--help"), { stdout: "Usage: prosodyctl status\n Reports the running status of Prosody\n", stderr: "", code: 0 });
  assert.is((await ctl(cfg, "restart", "--help")).code, 1);
});

test.run();
