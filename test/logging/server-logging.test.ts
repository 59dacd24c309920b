/**
 * `prosodyctl start` as a real process logs as its config's `log` option says: files by level,
 * the console layout on stdout by default, *stderr, *syslog to a test socket; a bad `log` option
 * stops the start (exit 1, one clear line); -v replaces the option with the console at debug.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PROSODYCTL, tempConfig } from "../helpers/cli.js";
import { freePort } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";
import { syslogSocket, syslogSocketMissing } from "../helpers/syslog.js";

interface Run {
  child: ChildProcess;
  dir: string;
  port: number;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | string | null>;
}

async function start(body: string, opts: { args?: string[]; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const port = await freePort();
  const { dir, config } = tempConfig(`data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
modules_enabled = { "http", "invites", "invites_api" }
${body}
VirtualHost "example.com"
`);
  const child = spawn(process.execPath, [PROSODYCTL, "--config", config, ...(opts.args ?? []), "start"], {
    cwd: dir,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d) => (err += d));
  const exited = new Promise<number | string | null>((r) => child.on("exit", (code, signal) => r(code ?? signal)));
  return { child, dir, port, stdout: () => out, stderr: () => err, exited };
}

async function until(what: string, check: () => boolean, run: Run, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\nstdout:\n${run.stdout()}\nstderr:\n${run.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(run: Run): Promise<number | string | null> {
  run.child.kill("SIGTERM");
  const t = setTimeout(() => run.child.kill("SIGKILL"), 10_000);
  const code = await run.exited;
  clearTimeout(t);
  return code;
}

const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
const lines = (text: string) => text.split("\n").filter(Boolean);

test("no log option: Prosody's console layout on stdout at info, nothing on stderr", async () => {
  const run = await start("");
  try {
    await until("Activated host", () => run.stdout().includes("Activated host"), run);
  } finally {
    assert.is(await stop(run), 0);
  }
  assert.ok(lines(run.stdout()).includes("general             info\tActivated host: example.com"), run.stdout());
  assert.ok(lines(run.stdout()).includes("general             info\tShutdown complete"), run.stdout());
  assert.not.match(run.stdout(), /\tdebug\t/);
  assert.is(run.stderr(), "");
});

test("files by level, *stderr and *syslog at once, each with its own levels and layout", async (ctx) => {
  const missing = syslogSocketMissing();
  if (missing) return skip(ctx, missing);
  const socket = await syslogSocket();
  const run = await start(
    `log = {
      { levels = { min = "debug" }, to = "file", filename = "$DIR/all.log" };
      warn = "$DIR/warn.log";
      { levels = { min = "info" }, to = "stderr" };
      { levels = { min = "info" }, to = "syslog" };
    }`,
    { env: { PROSODY_SYSLOG_SOCKET: socket.path } },
  );
  try {
    await until("Activated host in all.log", () => read(join(run.dir, "all.log")).includes("Activated host"), run);
    const hit = await socket.waitFor("Activated host: example.com");
    assert.match(hit, new RegExp(`^<30>\\w{3} [ \\d]\\d [\\d:]{8} prosody\\[${run.child.pid}\\]: general: Activated host: example\\.com$`));
  } finally {
    assert.is(await stop(run), 0);
    socket.close();
  }
  const all = read(join(run.dir, "all.log"));
  assert.match(all, /^\w{3} \d\d \d\d:\d\d:\d\d general\tinfo\tProsody-compatible host starting/m);
  assert.match(all, /\tdebug\t/, "debug lines in the debug file");
  assert.match(all, /general\tinfo\tShutdown complete\n$/);
  // Only warn and error in warn.log (nothing warns in this run: it exists, empty).
  for (const l of lines(read(join(run.dir, "warn.log")))) assert.match(l, /\t(warn|error)\t/);
  assert.ok(existsSync(join(run.dir, "warn.log")));
  assert.ok(lines(run.stderr()).includes("general             info\tActivated host: example.com"), run.stderr());
  assert.not.match(run.stderr(), /\tdebug\t/);
  // No console sink: no log line on stdout (start's "next steps" hints are printed there).
  assert.not.match(run.stdout(), /\t(debug|info|warn|error)\t/, run.stdout());
});

test("a warning reaches the warn file and not the info-only sink", async () => {
  const run = await start(`modules_enabled = { "http", "invites", "no_such_module_here" }
log = { warn = "$DIR/warn.log"; { levels = { "info" }, to = "stdout" } }`);
  try {
    await until("Activated host", () => run.stdout().includes("Activated host"), run);
  } finally {
    assert.is(await stop(run), 0);
  }
  // The warning: the repeated modules_enabled (a config warning, logged at start).
  assert.match(read(join(run.dir, "warn.log")), /^\w{3} \d\d [\d:]{8} general\twarn\tConfiguration warning: .*Duplicate option 'modules_enabled'\n/m, read(join(run.dir, "warn.log")));
  assert.not.match(read(join(run.dir, "warn.log")), /\tinfo\t/);
  assert.not.match(run.stdout(), /Duplicate option/);
});

test("a bad log option stops the start: exit 1, one clear line, nothing served", async () => {
  for (const [body, message] of [
    [`log = { info = "*sylog" }`, `Invalid 'log' option: info = "*sylog": unknown sink "*sylog" (use a file name, "*console", "*stdout", "*stderr", "*syslog" or "*nowhere")`],
    [`log = "$DIR/no/such/dir/prosody.log"`, `Invalid 'log' option: cannot open log file `],
    [`log = "$DIR"`, `Invalid 'log' option: cannot open log file `],
  ] as const) {
    const run = await start(body);
    const code = await Promise.race([run.exited, new Promise((r) => setTimeout(() => r("still running"), 20_000))]);
    if (code === "still running") await stop(run);
    assert.is(code, 1, `${body}\n${run.stdout()}${run.stderr()}`);
    assert.is(lines(run.stderr()).length, 1, run.stderr());
    assert.ok(run.stderr().startsWith(message), run.stderr());
    assert.not.match(run.stdout() + run.stderr(), /Activated host|at Object|    at /);
  }
});

test("-v replaces the log option for this run: the console at debug, the file not written", async () => {
  const run = await start(`log = "$DIR/prosody.log"`, { args: ["-v"] });
  try {
    await until("Activated host", () => run.stdout().includes("Activated host"), run);
  } finally {
    assert.is(await stop(run), 0);
  }
  assert.match(run.stdout(), /^mod_http            debug\tHTTP listening on 127\.0\.0\.1 port \d+$/m);
  assert.not.ok(existsSync(join(run.dir, "prosody.log")));
});

test("a console reader that went away (EPIPE) does not stop the server; the file sink goes on", async () => {
  const run = await start(`log = { "*console", { to = "file", filename = "$DIR/p.log", levels = { min = "info" } } }`);
  try {
    await until("Activated host", () => run.stdout().includes("Activated host"), run);
    run.child.stdout!.destroy(); // the reader of stdout is gone: the next console line gets EPIPE
  } finally {
    assert.is(await stop(run), 0, run.stderr());
  }
  assert.match(read(join(run.dir, "p.log")), /general\tinfo\tShutdown complete\n$/);
  assert.not.match(run.stderr(), /EPIPE|    at /);
});

test("SIGHUP (logrotate's postrotate): a log file moved away is created again; the old one gets nothing more", async () => {
  const run = await start(`log = "$DIR/prosody.log"`);
  const file = join(run.dir, "prosody.log");
  try {
    await until("Activated host", () => read(file).includes("Activated host"), run);
    renameSync(file, `${file}.1`);
    run.child.kill("SIGHUP");
    // Reopened once the reload is applied (its own lines still go to the old file).
    await until("a new prosody.log", () => existsSync(file), run);
  } finally {
    assert.is(await stop(run), 0);
  }
  assert.match(read(file), /general\tinfo\tShutdown complete\n$/);
  assert.not.match(read(`${file}.1`), /Shutdown complete/);
  assert.match(read(`${file}.1`), /Activated host[^]*Configuration reloaded/);
});

test.run();
