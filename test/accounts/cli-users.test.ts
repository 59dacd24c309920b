/**
 * prosodyctl adduser / passwd / deluser (spec §4.4): the built binary spawned with piped stdin
 * (exact stdout, stderr and exit codes; SQLite storage shared with this process), plus the
 * terminal path (raw mode, no echo) through runUserCommand with a fake TTY.
 * Needs `npm run build` first (scripts/run-tests.mjs does it).
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { PassThrough } from "node:stream";
import { resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { createRuntime } from "../../src/create-runtime.js";
import { runUserCommand, type UserCommand } from "../../src/cli/users.js";
import { verifyScramPassword } from "../../src/util/scram.js";
import { PROSODYCTL, prosodyctl, tempConfig } from "../helpers/cli.js";
import { makeConfig } from "../helpers/config.js";
import { skip } from "../helpers/skip.js";
import { recordOf } from "../helpers/records.js";

const BUILT = existsSync(resolve(import.meta.dirname, "../../dist/cli.js"));
const PROMPTS = "Enter new password: \nRetype new password: \n";

const { dir, config } = tempConfig(`
run_as_root = true
data_path = "$DIR/data"
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
VirtualHost "disabled.example"
enabled = false
`);

const ctl = (args: string[], input = "") => prosodyctl(["--config", config, ...args], { cwd: dir, input });

/** Reads (or writes) the shared SQLite database from this process. */
async function withStorage<T>(fn: (rt: Runtime) => Promise<T>, extraHost?: string): Promise<T> {
  const cfg = await loadConfigFile(config);
  // A host that is not in the config (prosodyctl warns and goes on, storing with global options).
  if (extraHost && !cfg.sections.has(extraHost)) cfg.sections.set(extraHost, { name: extraHost, kind: "VirtualHost", options: {}, file: "test" });
  const rt = createRuntime({ config: cfg, processType: "prosodyctl", cwd: dir });
  try {
    return await fn(rt);
  } finally {
    await rt.stop();
  }
}
const account = (user: string, host = "example.com") => withStorage(async (rt) => (await rt.storage.open(host, "accounts")).get(user).then((r) => (r ? recordOf(r) : undefined)), host);

function expectRun(r: { stdout: string; stderr: string; code: number | null }, stdout: string, code: number, label: string) {
  assert.is(r.stdout, stdout, `${label}: stdout`);
  assert.is(r.stderr, "", `${label}: stderr`);
  assert.is(r.code, code, `${label}: exit code`);
}

test.before(() => setLogLevel("error"));

test("adduser: two password lines → silent exit 0; Prosody's account record", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  expectRun(await ctl(["adduser", "alice@example.com"], "correct horse\ncorrect horse\n"), PROMPTS, 0, "adduser");
  const rec = await account("alice");
  assert.equal(Object.keys(rec ?? {}).sort(), ["iteration_count", "salt", "server_key", "stored_key"]);
  assert.ok(await verifyScramPassword(rec, "correct horse"));
});

test("adduser: existing user (also in another case) → 'That user already exists', exit 1, stdin untouched", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  expectRun(await ctl(["adduser", "alice@example.com"], "x\nx\n"), "That user already exists\n", 1, "exists");
  expectRun(await ctl(["adduser", "ALICE@Example.COM."], "x\nx\n"), "That user already exists\n", 1, "prepped");
});

test("adduser: mismatch → the try-again question, EOF or 'n' means no (exit 1); 'y' asks again", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  const question = "Passwords did not match, try again? [Y/n] \n";
  expectRun(await ctl(["adduser", "bob@example.com"], "one-password\nanother\n"), PROMPTS + question, 1, "mismatch, EOF");
  expectRun(await ctl(["adduser", "bob@example.com"], "one-password\nanother\nn\n"), PROMPTS + question, 1, "mismatch, n");
  expectRun(await ctl(["adduser", "bob@example.com"], "one-password\nanother\n\n"), PROMPTS + question, 1, "mismatch, Enter");
  assert.is(await account("bob"), undefined);
  expectRun(await ctl(["adduser", "bob@example.com"], "one-password\nanother\ny\nbob-password\nbob-password\n"), PROMPTS + question + PROMPTS, 0, "retry");
  assert.ok(await verifyScramPassword(await account("bob"), "bob-password"));
});

test("adduser: no password (EOF or empty line) → 'No password - cancelled', exit 1", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  expectRun(await ctl(["adduser", "carol@example.com"], ""), "Enter new password: \nNo password - cancelled\n", 1, "EOF");
  expectRun(await ctl(["adduser", "carol@example.com"], "\n"), "Enter new password: \nNo password - cancelled\n", 1, "empty");
  assert.is(await account("carol"), undefined);
});

test("JID errors, usage and help", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  const noHost = "Please specify a JID, including a host. e.g. alice@example.com\n";
  expectRun(await ctl(["adduser", "example.com"]), "Failed to understand JID, please supply the JID you want to create\nUsage: prosodyctl adduser user@host\n", 1, "adduser host only");
  expectRun(await ctl(["passwd", "example.com"]), "Failed to understand JID, please supply the JID you want to set the password for\nUsage: prosodyctl passwd user@host\n", 1, "passwd host only");
  expectRun(await ctl(["deluser", "example.com"]), "Failed to understand JID, please supply the JID to the user account you want to delete\nUsage: prosodyctl deluser user@host\n", 1, "deluser host only");
  for (const jid of ["bad user@example.com", "a@b@example.com", "@example.com", "alice@", "a:b@example.com"]) {
    expectRun(await ctl(["adduser", jid]), noHost, 1, jid);
  }
  expectRun(await ctl(["adduser"]), "Usage: prosodyctl adduser JID\n Create the specified user account in Prosody\n", 1, "no argument");
  expectRun(await ctl(["passwd", "--help"]), "Usage: prosodyctl passwd JID\n Set the password for the specified user account in Prosody\n", 0, "--help");
  expectRun(await ctl(["deluser", "-h"]), "Usage: prosodyctl deluser JID\n Permanently remove the specified user account from Prosody\n", 0, "-h");
  const help = await ctl([]);
  assert.match(help.stdout, "User management:\n adduser JID    Create the specified user account in Prosody\n passwd JID     Set the password");
});

test("passwd: rewrites the record with a new salt; unknown user refused", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  const before = await account("alice");
  expectRun(await ctl(["passwd", "Alice@example.com"], "new password 2\nnew password 2\n"), PROMPTS, 0, "passwd");
  const after = await account("alice");
  assert.is.not(after?.salt, before?.salt);
  assert.ok(await verifyScramPassword(after, "new password 2"));
  assert.not.ok(await verifyScramPassword(after, "correct horse"));
  expectRun(await ctl(["passwd", "nobody@example.com"], "x\nx\n"), "That user does not exist, use prosodyctl adduser to create a new user\n", 1, "passwd unknown");
  expectRun(await ctl(["passwd", "alice@example.com"], "a1\nb2\n"), PROMPTS + "Passwords did not match, try again? [Y/n] \n", 1, "passwd mismatch");
  assert.ok(await verifyScramPassword(await account("alice"), "new password 2"), "unchanged after a mismatch");
});

test("deluser: removes the account and purges the user's other data; unknown user refused", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  expectRun(await ctl(["adduser", "dave@example.com"], "dave-password\ndave-password\n"), PROMPTS, 0, "adduser dave");
  await withStorage(async (rt) => {
    await (await rt.storage.open("example.com", "roles")).set("dave", { "prosody:admin": true });
    await (await rt.storage.open("example.com", "account_details")).set("dave", { registered: 1795932672 });
  });
  expectRun(await ctl(["deluser", "dave@example.com"]), "", 0, "deluser");
  await withStorage(async (rt) => {
    assert.is(await (await rt.storage.open("example.com", "accounts")).get("dave"), undefined);
    assert.is(await (await rt.storage.open("example.com", "roles")).get("dave"), undefined);
    assert.is(await (await rt.storage.open("example.com", "account_details")).get("dave"), undefined);
    assert.ok(await (await rt.storage.open("example.com", "accounts")).get("alice"), "other users stay");
  });
  expectRun(await ctl(["deluser", "dave@example.com"]), "That user does not exist on this server\n", 1, "deluser again");
});

test("hosts not in the config: warnings, then the command goes on; a disabled host needs none", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  const warn = "The host 'elsewhere.example' is not listed in the configuration file (or is not enabled).\n";
  const cannot = "The user will not be able to log in until this is changed.\n";
  expectRun(await ctl(["adduser", "erin@elsewhere.example"], "erin-password\nerin-password\n"), warn + cannot + PROMPTS, 0, "adduser");
  assert.ok(await verifyScramPassword(await account("erin", "elsewhere.example"), "erin-password"));
  expectRun(await ctl(["deluser", "erin@elsewhere.example"]), warn, 0, "deluser");
  expectRun(await ctl(["deluser", "erin@elsewhere.example"]), warn + "That user does not exist on this server\n", 1, "deluser again");
  expectRun(await ctl(["adduser", "frank@disabled.example"], "frank-password\nfrank-password\n"), PROMPTS, 0, "disabled host");
});

// --- the terminal path, in-process ---

class FakeTty extends PassThrough {
  isTTY = true;
  modes: boolean[] = [];
  setRawMode(raw: boolean) {
    this.modes.push(raw);
    return this;
  }
}

async function onTty(command: UserCommand, jid: string, keys: string[]) {
  const tty = new FakeTty();
  let out = "";
  const cfg = makeConfig({ storage: "memory" }, { "example.com": {} });
  const running = runUserCommand(command, [jid], {
    io: { stdout: (t) => (out += t), cwd: dir, argv0: "prosodyctl", input: tty },
    loadConfig: async () => ({ config: cfg }),
  });
  // Type the keys one chunk at a time, as a terminal delivers them.
  for (const k of keys) {
    await new Promise((r) => setTimeout(r, 5));
    tty.write(k);
  }
  const code = await running;
  return { code, out, modes: tty.modes };
}

test("terminal: raw mode without echo, Backspace and escape sequences edit, mode restored", async () => {
  const r = await onTty("adduser", "tty@example.com", ["s", "e", "c", "x", "\u007f", "ret\r", "se", "\u001b[D", "cret\r"]);
  assert.is(r.code, 0);
  assert.is(r.out, PROMPTS, "nothing typed is echoed");
  assert.equal(r.modes, [true, false]);
});

test("terminal: mismatch → a single key answers the question; Ctrl-D cancels; Ctrl-C interrupts", async () => {
  const yes = await onTty("adduser", "tty@example.com", ["aaa\r", "bbb\r", "y", "ccc\r", "ccc\r"]);
  assert.is(yes.out, PROMPTS + "Passwords did not match, try again? [Y/n] \n" + PROMPTS);
  assert.is(yes.code, 0);
  const no = await onTty("adduser", "tty@example.com", ["aaa\r", "bbb\r", "\r"]);
  assert.is(no.code, 1);
  const eof = await onTty("adduser", "tty@example.com", ["\u0004"]);
  assert.equal([eof.code, eof.out], [1, "Enter new password: \nNo password - cancelled\n"]);
  const intr = await onTty("adduser", "tty@example.com", ["ab", "\u0003"]);
  assert.is(intr.code, 130);
  assert.equal(intr.modes, [true, false], "the terminal is restored");
});

test("adduser does not overwrite an account another process created while it asked for the password", async (ctx) => {
  // Issue #11 (same class as item 1): the name was free when adduser checked, but another process
  // (here a second adduser; in real life a web registration) creates it before the answer comes.
  if (!BUILT) return skip(ctx, "run npm run build first");
  const slow = spawn(process.execPath, [PROSODYCTL, "--config", config, "adduser", "race@example.com"], { cwd: dir, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  slow.stdout.setEncoding("utf8").on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => slow.on("close", r));
  for (const until = Date.now() + 30_000; !out.includes("Enter new password: "); ) {
    if (Date.now() > until) throw new Error(`no prompt: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  expectRun(await ctl(["adduser", "race@example.com"], "first one\nfirst one\n"), PROMPTS, 0, "the other adduser");
  slow.stdin.end("second one\nsecond one\n");
  assert.is(await exited, 1);
  assert.is(out, PROMPTS + "That user already exists\n");
  assert.ok(await verifyScramPassword(await account("race"), "first one"), "the first account is intact");
});

test.run();
