/**
 * The server's log setup in-process (src/core/logging.ts): sinks by level, files reopened on the
 * runtime's global `reopen-log-files`, a changed `log` option applied on `config-reloaded`,
 * syslog to a test socket, mistakes refused with a clear error.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigString, type Config } from "../../src/core/config/index.js";
import { createLogger } from "../../src/core/logger.js";
import { LogConfigError, LogSetup } from "../../src/core/logging.js";
import { createRuntime } from "../../src/create-runtime.js";
import { skip } from "../helpers/skip.js";
import { syslogSocket, syslogSocketMissing } from "../helpers/syslog.js";

const log = createLogger("example.com:test");

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "logging-"));
}

function config(body: string): Promise<Config> {
  return loadConfigString(body, "/etc/prosody/test.cfg.lua");
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");

/** Descriptors of this process open on `path` (by name, as /proc shows them). */
function openDescriptorsOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(path)) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

test("each sink gets its own levels; file lines carry Prosody's timestamp", async () => {
  const dir = tempDir();
  const setup = LogSetup.fromConfig(
    await config(`log = { debug = "all.log"; warn = "warn.log"; { to = "file", filename = "only-info.log", levels = { "info" } } }`),
    { cwd: dir },
  );
  try {
    log("debug", "a debug line");
    log("info", "an info line");
    log("warn", "a %s line", "warn");
    log("error", "an error line");
  } finally {
    await setup.close();
  }
  const all = read(join(dir, "all.log"));
  assert.match(all, /^\w{3} \d\d \d\d:\d\d:\d\d example\.com:test\tdebug\ta debug line\n/);
  assert.is(all.split("\n").filter(Boolean).length, 4);
  assert.equal(read(join(dir, "warn.log")).split("\n").filter(Boolean).map((l) => l.split("\t").slice(1).join(" ")), ["warn a warn line", "error an error line"]);
  assert.equal(read(join(dir, "only-info.log")).split("\n").filter(Boolean).map((l) => l.split("\t")[2]), ["an info line"]);
});

test("reopen-log-files on the runtime: a file moved away is created again, the old descriptor closed", async () => {
  const dir = tempDir();
  const cfg = await config(`log = "prosody.log"`);
  const setup = LogSetup.fromConfig(cfg, { cwd: dir });
  const runtime = createRuntime({ config: cfg, processType: "server", cwd: dir });
  setup.attach(runtime.globalEvents);
  try {
    log("info", "before rotation");
    renameSync(join(dir, "prosody.log"), join(dir, "prosody.log.1"));
    log("info", "still to the moved file");
    assert.is(openDescriptorsOn(join(dir, "prosody.log.1")), 1);
    runtime.globalEvents.fire("reopen-log-files", {});
    log("info", "after rotation");
  } finally {
    await setup.close();
  }
  assert.match(read(join(dir, "prosody.log.1")), /before rotation\n.*still to the moved file\n$/);
  assert.match(read(join(dir, "prosody.log")), /^\w{3} \d\d [\d:]+ example\.com:test\tinfo\tafter rotation\n$/);
  assert.is(openDescriptorsOn(join(dir, "prosody.log.1")), 0, "the old descriptor is closed");
});

test("reopen: a file that cannot be reopened keeps the old descriptor, and says why", async () => {
  const dir = tempDir();
  const sub = join(dir, "logs");
  mkdirSync(sub);
  const setup = LogSetup.fromConfig(await config(`log = { info = "logs/p.log", error = "errors.log" }`), { cwd: dir });
  try {
    renameSync(sub, join(dir, "gone")); // the directory disappears: p.log cannot be created again
    setup.reopen();
    log("info", "kept writing");
  } finally {
    await setup.close();
  }
  assert.match(read(join(dir, "gone", "p.log")), /kept writing/);
  assert.match(read(join(dir, "errors.log")), /general\terror\tKeeping the old log file descriptor: cannot open log file .*logs\/p\.log: ENOENT/);
});

test("config-reloaded on the runtime applies a changed log option; a bad one is refused and the old sinks stay", async () => {
  const dir = tempDir();
  const first = await config(`log = "one.log"`);
  const setup = LogSetup.fromConfig(first, { cwd: dir });
  const runtime = createRuntime({ config: first, processType: "server", cwd: dir });
  setup.attach(runtime.globalEvents);
  try {
    log("info", "to one");
    runtime.globalEvents.fire("config-reloaded", { config: await config(`log = { warn = "two.log" }`) });
    log("info", "info to nowhere now");
    log("warn", "warn to two");
    runtime.globalEvents.fire("config-reloaded", { config: await config(`log = { warn = "*nosuchsink" }`) });
    log("warn", "still to two");
    assert.is(openDescriptorsOn(join(dir, "one.log")), 0, "the replaced file is closed");
  } finally {
    await setup.close();
  }
  assert.match(read(join(dir, "one.log")), /to one\n$/);
  const two = read(join(dir, "two.log"));
  assert.match(two, /warn to two\n/);
  assert.match(two, /general\terror\tNot applying the changed log configuration: Invalid 'log' option: warn = "\*nosuchsink": unknown sink/);
  assert.match(two, /still to two\n$/);
  assert.not.match(two, /info to nowhere/);
});

test("an unwritable file or an unknown sink is a LogConfigError before anything is logged", async () => {
  const dir = tempDir();
  for (const [body, message] of [
    [`log = "no/such/dir/p.log"`, /cannot open log file .*no\/such\/dir\/p\.log: ENOENT/],
    [`log = "."`, /cannot open log file .*: EISDIR/],
    [`log = { info = "ok.log", "*journald" }`, /unknown sink "\*journald"/],
  ] as const) {
    try {
      LogSetup.fromConfig(await config(body), { cwd: dir });
      assert.unreachable(body);
    } catch (err) {
      assert.instance(err, LogConfigError);
      assert.match((err as Error).message, message);
    }
  }
  assert.is(openDescriptorsOn(join(dir, "ok.log")), 0, "a file opened before the failure is closed again");
});

test("syslog: <facility*8+severity>, ident[pid], \"source: message\"; ident and facility from the sink", async (ctx) => {
  const missing = syslogSocketMissing();
  if (missing) return skip(ctx, missing);
  const socket = await syslogSocket();
  const env = { ...process.env, PROSODY_SYSLOG_SOCKET: socket.path };
  try {
    let setup = LogSetup.fromConfig(await config(`log = { info = "*syslog" }`), { cwd: tempDir(), env });
    log("debug", "not sent");
    log("info", "hello %s", "syslog");
    log("warn", "two\nlines");
    log("error", "bad");
    await setup.close();
    const info = await socket.waitFor("hello syslog");
    assert.match(info, new RegExp(`^<30>\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d prosody\\[${process.pid}\\]: example\\.com:test: hello syslog$`));
    assert.match(await socket.waitFor("two lines"), /^<28>.*: example\.com:test: two lines$/);
    assert.match(await socket.waitFor("bad"), /^<27>/);
    assert.not.ok(socket.messages().some((m) => m.includes("not sent")));

    setup = LogSetup.fromConfig(await config(`syslog_facility = "local2" log = { { to = "syslog", syslog_name = "xmpp" } }`), { cwd: tempDir(), env });
    log("debug", "from local2");
    await setup.close();
    // local2 = 18: 18*8 + 7 (debug)
    assert.match(await socket.waitFor("from local2"), new RegExp(`^<151>.* xmpp\\[${process.pid}\\]: example\\.com:test: from local2$`));
  } finally {
    socket.close();
  }
});

test("*syslog without the logger command is a clear error", async () => {
  try {
    LogSetup.fromConfig(await config(`log = "*syslog"`), { cwd: tempDir(), env: { PATH: tempDir() } });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, LogConfigError);
    assert.match((err as Error).message, /"\*syslog" needs the logger command/);
  }
});

test("syslog: a logger that died is started again when the config is reloaded", async (ctx) => {
  const missing = syslogSocketMissing();
  if (missing) return skip(ctx, missing);
  const socket = await syslogSocket();
  const env = { ...process.env, PROSODY_SYSLOG_SOCKET: socket.path };
  const children = () => readFileSync(`/proc/self/task/${process.pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  const before = new Set(children());
  const cfg = await config(`log = "*syslog"`);
  const setup = LogSetup.fromConfig(cfg, { cwd: tempDir(), env });
  const runtime = createRuntime({ config: cfg, processType: "server", cwd: tempDir() });
  setup.attach(runtime.globalEvents);
  try {
    log("info", "first logger");
    await socket.waitFor("first logger");
    const loggerPid = children().find((pid) => !before.has(pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("logger"));
    assert.ok(loggerPid, "the logger child");
    process.kill(loggerPid!, "SIGKILL");
    const until = Date.now() + 5000;
    while (existsSync(`/proc/${loggerPid}/cmdline`) && readFileSync(`/proc/${loggerPid}/stat`, "utf8").split(" ")[2] !== "Z" && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 100)); // our exit handler runs
    runtime.globalEvents.fire("config-reloaded", { config: await config(`log = "*syslog"`) });
    log("info", "second logger");
    assert.match(await socket.waitFor("second logger"), /prosody\[\d+\]: example\.com:test: second logger$/);
  } finally {
    await setup.close();
    socket.close();
  }
});

test.run();
