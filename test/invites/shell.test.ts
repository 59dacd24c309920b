/**
 * `prosodyctl shell invite …` (Prosody 13's shell commands, plugins/mod_invites/shell.ts) through
 * a running server's admin socket: output, exit codes and what ends up in storage; and what
 * `prosodyctl shell` says without a server or for a command it does not have.
 */
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { openSqlDatabase } from "../../src/storage/drivers/sql.js";
import { localTime, parseDuration } from "../../plugins/mod_invites/shell.js";
import { parseFlags } from "../../src/cli/shell.js";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { startServerProcess } from "../helpers/server-process.js";
import { existsSync } from "node:fs";

const CONFIG = `
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "http" }
VirtualHost "example.org"
modules_enabled = { "http" }
`;

const TOKEN = "([A-Za-z0-9_-]{24})";

test("without a running server, prosodyctl shell says it could not connect (exit 1)", async () => {
  const { dir, config } = tempConfig(CONFIG);
  const r = await prosodyctl(["--config", config, "shell", "invite", "list", "example.com"], { cwd: dir });
  assert.is(r.code, 1);
  assert.is(r.stdout, `** Unable to connect to server - is it running?\n** Connection error: no prosody-ts server answers on ${join(dir, "data", "prosody-ts.sock")}\n`);
  assert.is(r.stderr, "");
});

test("prosodyctl --help names the shell command", async () => {
  const r = await prosodyctl(["--help"]);
  assert.match(r.stdout, /\n\nRunning server:\n shell {10}Run a command in the running server, e\.g\. shell invite list example\.com \(shell alone lists them\)\n/);
});

test("a token that begins with '-' is an argument after '--', a flag before it (Prosody's argparse)", () => {
  assert.equal(parseFlags(["example.com", "--", "-Tok-en"]), { opts: {}, positional: ["example.com", "-Tok-en"] });
  assert.equal(parseFlags(["example.com", "-Tok-en"]), { opts: { Tok_en: true }, positional: ["example.com"] });
});

test("Prosody's duration forms", () => {
  assert.equal(["1d", "2h", "30min", "2 weeks", "1mon", "10s", "3600", "soon"].map(parseDuration), [86400, 7200, 1800, 1209600, 2678400, 10, undefined, undefined]);
});

test("shell invite commands through the admin socket: output, exit codes and stored invites", async () => {
  const server = await startServerProcess(CONFIG);
  const sock = join(server.dir, "data", "prosody-ts.sock");
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  const shell = (...args: string[]) => prosodyctl(["--config", server.config, "shell", ...args], { cwd: server.dir, env: { COLUMNS: "" } });
  const tokens: Record<string, string> = {};
  try {
    const admin = await shell("invite", "create_account", "example.com", "--admin", "--role", "r1", "--expires-after", "2d");
    assert.equal([admin.code, admin.stderr], [0, ""]);
    tokens.admin = new RegExp(`^OK: xmpp:example\\.com\\?register;preauth=${TOKEN}\\n$`).exec(admin.stdout)![1]!;

    const bob = await shell("invite", "create_account", "bob@example.com");
    tokens.bob = new RegExp(`^OK: xmpp:bob@example\\.com\\?register;preauth=${TOKEN}\\n$`).exec(bob.stdout)![1]!;

    const before = Date.now() / 1000;
    const reset = await shell("invite", "create_reset", "alice@example.com");
    assert.is(reset.code, 0);
    const m = new RegExp(`^xmpp:alice@example\\.com\\?register;preauth=${TOKEN}\\nOK: Password reset link for alice@example\\.com valid until (\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d)\\n$`).exec(reset.stdout);
    assert.ok(m, reset.stdout);
    tokens.reset = m![1]!;
    assert.ok([localTime(Math.floor(before) + 86400), localTime(Math.floor(before) + 86401)].includes(m![2]!), "valid for a day, in the server's local time");

    const contact = await shell("invite", "create_contact", "alice@example.com", "--allow-registration");
    tokens.contact = new RegExp(`^OK: xmpp:alice@example\\.com\\?roster;preauth=${TOKEN};ibr=y\\n$`).exec(contact.stdout)![1]!;

    // Errors: on stderr with "Error: ", exit 1, nothing created.
    const errors = [
      [["invite", "create_reset", "example.com"], "Supply the JID of the account you want to generate a password reset for"],
      [["invite", "create_contact", "example.com"], "Supply the JID of the account you want the recipient to become a contact of"],
      [["invite", "create_account", "example.com", "--expires-after", "3600"], "Unable to parse duration: 3600"],
      [["invite", "create_account", "example.com", "--role"], "Expected value after --role"],
      [["invite", "list", "nosuch.org"], "Unknown host: nosuch.org"],
      [["invite", "list", "example.org"], "This command is not available on example.org"],
      [["invite", "list"], "Invalid or missing argument 'host'"],
      [["invite", "show", "example.com", "nosuchtoken"], "token-invalid"],
    ] as const;
    for (const [args, message] of errors) {
      const r = await shell(...args);
      assert.equal([r.code, r.stdout, r.stderr], [1, "", `Error: ${message}\n`], args.join(" "));
    }

    const list = await shell("invite", "list", "example.com");
    assert.is(list.code, 0);
    const lines = list.stdout.split("\n");
    assert.is(lines.at(-2), "OK: 4 pending invites");
    assert.is(lines[0], `${"Token".padEnd(24)} | ${"Expires".padEnd(20)} | ${"Description".padEnd(80)}`, "Prosody's table, 130 columns");
    const rows = new Map(lines.slice(1, -2).map((l) => [l.slice(0, 24), l.split(" | ")[2]!.trimEnd()]));
    assert.equal(Object.fromEntries(Object.entries(tokens).map(([k, t]) => [k, rows.get(t)])), {
      admin: "Register on example.com",
      bob: "Register on example.com with username bob",
      reset: "Password reset for alice@example.com",
      contact: "Contact with alice@example.com",
    });
    assert.match(lines[1]!, /^\S{24} \| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d  \| /);
    const narrow = await prosodyctl(["--config", server.config, "shell", "invite", "list", "example.com"], { cwd: server.dir, env: { COLUMNS: "80" } });
    assert.is(narrow.stdout.split("\n")[0]!.length, 78, "COLUMNS less Prosody's margin of 2");

    const show = await shell("invite", "show", "example.com", "--", tokens.admin);
    const shown = show.stdout.split("\n");
    assert.is(shown[0], "Invitation to register on example.com");
    assert.match(shown[1]!, /^Created:\t\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    assert.match(shown[2]!, /^Expires:\t/);
    assert.equal(shown.slice(3), ["", `XMPP URI:\txmpp:example.com?register;preauth=${tokens.admin}`, "", "Role:\tprosody:admin", "Secondary roles:\tr1", "Groups:\t", "OK: Invitation valid", ""]);
    assert.match((await shell("invite", "show", "example.com", "--", tokens.reset)).stdout, /^Password reset for alice@example\.com\n/);
    assert.match((await shell("invite", "show", "example.com", "--", tokens.contact)).stdout, /^Invitation to register and become a contact of alice@example\.com\n/);

    // A token may begin with "-" (base64url): after "--" it is never read as a flag, as in Prosody.
    const del = await shell("invite", "delete", "example.com", "--", tokens.bob);
    assert.equal([del.code, del.stdout], [0, "OK: Invitation deleted\n"]);
    assert.match((await shell("invite", "list", "example.com")).stdout, /OK: 3 pending invites\n$/);
  } finally {
    await server.stop();
  }

  // What the server stored, as Prosody's records.
  const db = await openSqlDatabase(join(server.dir, "data", "prosody.sqlite"));
  const rows = db.engine.sqlite.all(`SELECT user, key, value FROM prosody WHERE store = 'invite_token'`, []) as Array<{ user: string; key: string; value: string }>;
  await db.close();
  const host = new Map(rows.filter((r) => r.user === "").map((r) => [r.key, JSON.parse(r.value)]));
  assert.not.ok(host.has(tokens.bob!), "deleted");
  const adminRec = host.get(tokens.admin!);
  assert.equal(adminRec.additional_data, { groups: {}, roles: { "prosody:admin": true, r1: true } });
  assert.is(adminRec.expires - adminRec.created_at, 2 * 86400);
  const resetRec = host.get(tokens.reset!);
  assert.equal([resetRec.type, resetRec.jid, resetRec.additional_data, resetRec.expires - resetRec.created_at], ["register", "alice@example.com", { allow_reset: "alice" }, 86400]);
  const contactRec = host.get(tokens.contact!);
  assert.equal([contactRec.type, contactRec.jid, contactRec.allow_registration], ["roster", "alice@example.com", true]);
  const perUser = rows.find((r) => r.user === "alice" && r.key === tokens.contact);
  assert.is(Number(perUser?.value), contactRec.expires, "the inviter's own entry");
});

test("prosodyctl shell alone lists the commands this server offers; an unknown one is an error and the list", async () => {
  const server = await startServerProcess(CONFIG);
  const sock = join(server.dir, "data", "prosody-ts.sock");
  for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  try {
    const all = await prosodyctl(["--config", server.config, "shell"], { cwd: server.dir });
    assert.is(all.code, 0);
    for (const line of ["Help: invite", "invite create_account <user_jid>", "invite create_reset <user_jid>", "invite create_contact <user_jid>", "invite list <host>", "invite show <host> <token>", "invite delete <host> <token>", "      --expires-after <expires_after>", "      --role <role>, ..."]) {
      assert.ok(all.stdout.split("\n").includes(line), line);
    }
    const unknown = await prosodyctl(["--config", server.config, "shell", "user", "create"], { cwd: server.dir });
    assert.is(unknown.code, 1);
    assert.is(unknown.stderr, "Error: Command not found. Is the necessary module loaded?\n");
    assert.is(unknown.stdout, all.stdout);
  } finally {
    await server.stop();
  }
});

test.run();
