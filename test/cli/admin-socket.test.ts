/**
 * The running server's admin socket (src/cli/admin-socket.ts, admin-client.ts): where it is and
 * who may connect, prompts that stay in prosodyctl, log lines on prosodyctl's stderr, and what
 * prosodyctl does when the server is gone, killed mid-command, not ours or serving another config.
 * (The golden CLI replay runs both ways in test/invites/golden-cli.test.ts.)
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PROSODYCTL, prosodyctl, tempConfig, type Ran } from "../helpers/cli.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";
import { skipIf } from "../helpers/skip.js";

const CONFIG = `
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "invites_page", "http" }
`;

const isRoot = process.getuid?.() === 0;
const haveRunuser = spawnSync("sh", ["-c", "command -v runuser"]).status === 0;
const asRoot = skipIf(test, (!isRoot || !haveRunuser) && "needs root and runuser (to connect as other users)");

const socketOf = (s: { dir: string }) => join(s.dir, "data", "prosody-ts.sock");
/** HTTP answers a moment before the admin socket is there. */
const socketReady = (s: ServerProcess) => until("the admin socket", () => existsSync(socketOf(s)));
const ranInServer = (s: ServerProcess) => s.output().match(/Running for prosodyctl: \S+/g)?.length ?? 0;

/** Connects as `user` (through runuser) and prints the server's first line or the error code. */
function connectAs(user: string | undefined, path: string): string {
  const script = `const s = require("net").connect(${JSON.stringify(path)});
    s.on("data", (d) => { process.stdout.write(String(d).split("\\n")[0]); s.destroy(); });
    s.on("error", (e) => process.stdout.write(e.code));`;
  const argv = user ? ["runuser", "-u", user, "--", process.execPath, "-e", script] : [process.execPath, "-e", script];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: 10_000 });
  return r.stdout;
}

/** Started as root, the server runs as daemon (uid 1), which owns the data directory. */
const AS_DAEMON = `run_as_root = false\nprosody_user = "daemon"\nprosody_group = "daemon"\n${CONFIG}`;
function daemonOwned(dir: string): void {
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, "data"), { mode: 0o750 });
  chownSync(join(dir, "data"), 1, 1);
}

asRoot("the socket is prosody-ts.sock in the data directory, mode 0660, owned like the directory; removed at stop", async () => {
  const server = await startServerProcess(AS_DAEMON, { prepare: daemonOwned });
  await socketReady(server);
  try {
    const st = statSync(socketOf(server));
    assert.ok(st.isSocket());
    assert.is(st.mode & 0o777, 0o660);
    assert.equal([st.uid, st.gid], [1, 1]);
  } finally {
    await server.stop();
  }
  assert.not.ok(existsSync(socketOf(server)), "removed when the server stops");
});

asRoot("only the data directory's owner and group (and root) may connect: nobody is refused", async () => {
  const server = await startServerProcess(AS_DAEMON, {
    prepare: (dir) => {
      daemonOwned(dir);
      // A directory open to all: the socket's own mode is what keeps others out.
      chmodSync(join(dir, "data"), 0o755);
    },
  });
  await socketReady(server);
  try {
    const path = socketOf(server);
    assert.is(connectAs("nobody", path), "EACCES", "nobody: permission denied");
    assert.is(connectAs("daemon", path), `{"t":"hello","v":1}`, "the owner is greeted");
    assert.is(connectAs(undefined, path), `{"t":"hello","v":1}`, "root is greeted");
  } finally {
    await server.stop();
  }
});

asRoot("a server running as root gives the socket the data directory's group, so its members may connect", async () => {
  const server = await startServerProcess(CONFIG, {
    prepare: (dir) => {
      chmodSync(dir, 0o755);
      mkdirSync(join(dir, "data"), { mode: 0o750 });
      chownSync(join(dir, "data"), 0, 1); // root:daemon
    },
  });
  await socketReady(server);
  try {
    const st = statSync(socketOf(server));
    assert.equal([st.uid, st.gid, st.mode & 0o777], [0, 1, 0o660]);
    assert.is(connectAs("daemon", socketOf(server)), `{"t":"hello","v":1}`, "a member of the directory's group is greeted");
    assert.is(connectAs("nobody", socketOf(server)), "EACCES");
  } finally {
    await server.stop();
  }
});

/** adduser, adduser again, passwd with retyping wrong and no retry, passwd, deluser twice. */
async function accountRuns(config: string, cwd: string): Promise<Ran[]> {
  const run = (args: string[], input?: string) => prosodyctl(["--config", config, ...args], { cwd, input });
  return [
    await run(["adduser", "alice@example.com"], "secret\nsecret\n"),
    await run(["adduser", "alice@example.com"], "x\nx\n"),
    await run(["passwd", "alice@example.com"], "one\ntwo\nn\n"),
    await run(["passwd", "alice@example.com"], "new\nnew\n"),
    await run(["deluser", "alice@example.com"]),
    await run(["deluser", "alice@example.com"]),
  ];
}

test("adduser/passwd/deluser through the socket: prompts answered in prosodyctl, same output and exit codes as in-process", async () => {
  const { dir, config } = tempConfig(CONFIG);
  const local = await accountRuns(config, dir);
  assert.equal(
    local.map((r) => r.code),
    [0, 1, 1, 0, 0, 1],
  );
  assert.is(local[2]!.stdout, "Enter new password: \nRetype new password: \nPasswords did not match, try again? [Y/n] \n");
  const server = await startServerProcess(CONFIG);
  await socketReady(server);
  try {
    const remote = await accountRuns(server.config, server.dir);
    assert.equal(remote, local);
    assert.is(ranInServer(server), 6, "all six ran in the server");
  } finally {
    await server.stop();
  }
});

test("log lines of a command the server runs go to prosodyctl's stderr, as in-process", async () => {
  const body = `${CONFIG}\nstrange_option = function() end\n`;
  const { dir, config } = tempConfig(body);
  const local = await prosodyctl(["--config", config, "mod_invites_api", "list", "example.com"], { cwd: dir });
  assert.match(local.stderr, /warn\tConfiguration warning: .*strange_option/);
  const server = await startServerProcess(body);
  await socketReady(server);
  try {
    const remote = await prosodyctl(["--config", server.config, "mod_invites_api", "list", "example.com"], { cwd: server.dir });
    assert.equal(remote, { ...local, stderr: local.stderr.replaceAll(dir, server.dir) });
    assert.is(ranInServer(server), 1);
  } finally {
    await server.stop();
  }
});

/** A prosodyctl child whose stdin stays open until the test ends it. */
function spawnCli(args: string[], cwd: string) {
  const child = spawn(process.execPath, [PROSODYCTL, ...args], { cwd, env: { ...process.env, PROSODY_TS_SYSTEM_CONFIG: "" }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("server killed mid-command: prosodyctl prints one line and exits 1; later runs fall back to in-process; a new server replaces the dead socket", async () => {
  const server = await startServerProcess(CONFIG);
  await socketReady(server);
  const cli = spawnCli(["--config", server.config, "adduser", "bob@example.com"], server.dir);
  try {
    await until("the password prompt", () => cli.out().includes("Enter new password: "));
    server.child.kill("SIGKILL");
    await server.exited;
    const started = Date.now();
    const code = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r("hung"), 8000))]);
    assert.is(code, 1, "exit 1, no hang");
    assert.ok(Date.now() - started < 5000);
    assert.match(cli.err(), /^prosodyctl: the server stopped while running this command \(admin socket .*prosody-ts\.sock\); it may or may not have taken effect\n$/);
  } finally {
    cli.child.kill("SIGKILL");
  }
  assert.ok(existsSync(socketOf(server)), "a killed server leaves its socket behind");
  const after = await prosodyctl(["--config", server.config, "mod_invites", "generate", "example.com"], { cwd: server.dir });
  assert.is(after.code, 0, after.stderr);
  assert.match(after.stdout, /^xmpp:example\.com\?register;preauth=/);
  assert.is(after.stderr, "");

  const again = spawn(process.execPath, [PROSODYCTL, "--config", server.config, "start"], { cwd: server.dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  again.stdout.on("data", (d) => (out += d));
  again.stderr.on("data", (d) => (out += d));
  try {
    await until("the new server's socket", () => out.includes("Next steps"), 20_000);
    const list = await prosodyctl(["--config", server.config, "mod_invites_api", "list", "example.com"], { cwd: server.dir });
    assert.is(list.code, 0);
    assert.match(out, /Running for prosodyctl: mod_invites_api list/, "ran in the new server");
  } finally {
    again.kill("SIGTERM");
    await new Promise((r) => again.on("exit", r));
  }
});

test("a server that stops answering (SIGSTOP): mid-command, one line and exit 1 after the heartbeat lapses; before greeting, the command runs here", async () => {
  // Internal storage: a stopped server keeps the SQLite writer lock it holds (it hands it over
  // only when running), so a command run here on SQLite would wait for it; not what this tests.
  const server = await startServerProcess(CONFIG.replace(/^storage = "sql"$/m, 'storage = "internal"'));
  await socketReady(server);
  const cli = spawnCli(["--config", server.config, "adduser", "carol@example.com"], server.dir);
  try {
    await until("the password prompt", () => cli.out().includes("Enter new password: "));
    server.child.kill("SIGSTOP");
    cli.child.stdin.write("pw\n");
    const code = await Promise.race([cli.exited, new Promise((r) => setTimeout(() => r("hung"), 20_000))]);
    assert.is(code, 1, "exit 1, no hang");
    assert.match(cli.err(), /^prosodyctl: the server stopped answering while running this command \(admin socket .*\); it may or may not have taken effect\n$/);
    const started = Date.now();
    const r = await prosodyctl(["--config", server.config, "mod_invites_api", "list", "example.com"], { cwd: server.dir });
    assert.equal([r.code, r.stderr], [0, ""], "ran in-process");
    assert.ok(Date.now() - started < 10_000);
  } finally {
    cli.child.kill("SIGKILL");
    server.child.kill("SIGCONT");
    await server.stop();
  }
  assert.is(ranInServer(server), 1, "only the adduser reached the server");
});

test("a socket that is not ours (never greets) or a server of another config: prosodyctl runs the command itself", async () => {
  const { dir, config } = tempConfig(CONFIG);
  mkdirSync(join(dir, "data"));
  let connections = 0;
  const silent = net.createServer(() => connections++);
  await new Promise<void>((r) => silent.listen(join(dir, "data", "prosody-ts.sock"), r));
  try {
    const started = Date.now();
    const r = await prosodyctl(["--config", config, "mod_invites", "generate", "example.com"], { cwd: dir });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^xmpp:example\.com\?register;preauth=/);
    assert.is(connections, 1, "it tried the socket first");
    assert.ok(Date.now() - started < 8000);
  } finally {
    silent.close();
  }

  const server = await startServerProcess(CONFIG);
  await socketReady(server);
  try {
    // Another config file sharing the server's data directory.
    const other = join(server.dir, "other.cfg.lua");
    writeFileSync(other, `run_as_root = true\ndata_path = ${JSON.stringify(join(server.dir, "data"))}\n${CONFIG}`);
    const r = await prosodyctl(["--config", other, "mod_invites", "generate", "example.com"], { cwd: server.dir });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^xmpp:example\.com\?register;preauth=/);
    assert.is(ranInServer(server), 0, "the server declined it");
  } finally {
    await server.stop();
  }
});

test("prosody_ts_admin_socket: another path (relative to the data directory), or false for none", async () => {
  const moved = await startServerProcess(`prosody_ts_admin_socket = "ctl/admin.sock"\n${CONFIG}`);
  try {
    await until("the moved socket", () => existsSync(join(moved.dir, "data", "ctl", "admin.sock")));
    assert.not.ok(existsSync(socketOf(moved)));
    const r = await prosodyctl(["--config", moved.config, "mod_invites_api", "list", "example.com"], { cwd: moved.dir });
    assert.is(r.code, 0);
    assert.is(ranInServer(moved), 1);
  } finally {
    await moved.stop();
  }
  const off = await startServerProcess(`prosody_ts_admin_socket = false\n${CONFIG}`);
  try {
    await until("the server's start", () => off.output().includes("Next steps"));
    const r = await prosodyctl(["--config", off.config, "mod_invites_api", "list", "example.com"], { cwd: off.dir });
    assert.equal([r.code, ranInServer(off)], [0, 0], "in-process");
    assert.not.ok(existsSync(socketOf(off)));
    const shell = await prosodyctl(["--config", off.config, "shell", "invite", "list", "example.com"], { cwd: off.dir });
    assert.equal([shell.code, shell.stdout], [1, "** Unable to connect to server - is it running?\n** The admin socket is turned off (prosody_ts_admin_socket = false)\n"]);
  } finally {
    await off.stop();
  }
});

/** Sends `lines` on a fresh connection; resolves with what the server answered before closing. */
function exchange(path: string, lines: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    let got = "";
    s.setEncoding("utf8");
    s.on("data", (d) => (got += d));
    s.on("connect", () => s.write(lines.join("")));
    s.on("error", reject);
    s.on("close", () => resolve(got));
    setTimeout(() => s.destroy(), 5000);
  });
}

test("bad requests are refused without running anything; a request for another data directory too", async () => {
  // data_path relative to the working directory (the server's is its config's directory).
  const server = await startServerProcess(`data_path = "data"\n${CONFIG}`);
  await socketReady(server);
  const path = socketOf(server);
  const hello = `{"t":"hello","v":1}\n`;
  try {
    assert.is(await exchange(path, ["this is not json\n"]), hello, "closed after the greeting");
    assert.is(await exchange(path, [`{"t":"run","argv":"mod_invites"}\n`]), `${hello}{"t":"refused","reason":"bad request"}\n`);
    assert.is(await exchange(path, [`[1,2]\n`]), hello);
    const run = (cwd: string) => JSON.stringify({ t: "run", argv: ["--config", server.config, "mod_invites", "generate", "example.com"], cwd, argv0: "prosodyctl", config: server.config }) + "\n";
    assert.is(await exchange(path, [run("/tmp")]), `${hello}{"t":"refused","reason":"this server runs another config or data directory"}\n`);
    // A request of a protocol version this server does not speak.
    const v2 = JSON.stringify({ ...JSON.parse(run(server.dir)), v: 2 }) + "\n";
    assert.is(await exchange(path, [v2]), `${hello}{"t":"refused","reason":"bad request"}\n`);
    assert.is(ranInServer(server), 0);
    const ok = await exchange(path, [run(server.dir)]);
    const answered = ok.replace(/\{"t":"alive"\}\n/g, ""); // every 2 s while it runs
    assert.match(answered, /^\{"t":"hello","v":1\}\n\{"t":"started"\}\n\{"t":"out","d":"xmpp:example\.com\?register;preauth=[\w-]{24}\\n"\}\n\{"t":"exit","code":0\}\n$/);
    assert.is(ranInServer(server), 1, "the server still serves after the bad ones");
  } finally {
    await server.stop();
  }
});

test("a command's output lines reach prosodyctl in one message", async () => {
  const server = await startServerProcess(CONFIG);
  await socketReady(server);
  try {
    for (const name of ["one", "two", "three"]) {
      const made = await prosodyctl(["--config", server.config, "mod_invites_api", "create", "example.com", name], { cwd: server.dir });
      assert.is(made.code, 0, made.stdout + made.stderr);
    }
    const run = (argv: string[]) => JSON.stringify({ t: "run", v: 1, argv: ["--config", server.config, ...argv], cwd: server.dir, argv0: "prosodyctl", config: server.config }) + "\n";
    const listed = (await exchange(socketOf(server), [run(["mod_invites_api", "list", "example.com"])])).replace(/\{"t":"alive"\}\n/g, "");
    const msgs = listed.trim().split("\n").map((l) => JSON.parse(l) as { t: string; d?: string });
    assert.equal(msgs.map((m) => m.t), ["hello", "started", "out", "exit"], listed);
    assert.equal(msgs[2]!.d!.split("\n").filter(Boolean).map((l) => l.split("\t")[1]).sort(), ["one", "three", "two"]);
    const same = await prosodyctl(["--config", server.config, "mod_invites_api", "list", "example.com"], { cwd: server.dir });
    assert.is(same.stdout, msgs[2]!.d, "prosodyctl prints what the message held");
  } finally {
    await server.stop();
  }
});

test.run();
