/**
 * mod_auth_internal_plain (Prosody's `authentication = "internal_plain"`): the provider in-process
 * (memory storage), then a server with internal storage where `/register` creates
 * `accounts/<user>.dat = { password = "…" }` and `prosodyctl adduser|passwd|deluser` work.
 * Real Prosody reading these accounts back is in test/interop/auth-plain.test.ts.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createRuntime } from "../../src/create-runtime.js";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import type { AuthProvider } from "../../plugins/mod_auth_internal_hashed/mod_auth_internal_hashed.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { makeConfig } from "../helpers/config.js";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";

async function provider() {
  const rt = createRuntime({ config: makeConfig({ storage: "memory", authentication: "internal_plain" }, { "example.com": {} }), processType: "server" });
  const auth = (await rt.modules.load("example.com", "auth_internal_plain")).exports as AuthProvider;
  const accounts = await rt.storage.open("example.com", "accounts", "keyval");
  return { rt, auth, accounts };
}

test("plain: createUser stores exactly { password } (SASLprepped), as Prosody's module", async () => {
  const { auth, accounts } = await provider();
  assert.not.ok(await auth.userExists("alice"));
  // U+00A0 (no-break space) is mapped to a space by SASLprep; Prosody stores the prepared form.
  assert.equal(await auth.createUser("alice", "correct\u00a0horse"), [true, undefined]);
  assert.equal(await accounts.get("alice"), { password: "correct horse" });
  assert.ok(await auth.userExists("alice"));
  assert.ok(await auth.testPassword("alice", "correct horse"));
  assert.ok(await auth.testPassword("alice", "correct\u00a0horse"));
  assert.not.ok(await auth.testPassword("alice", "correct horsE"));
  assert.not.ok(await auth.testPassword("nobody", "correct horse"));
  assert.equal(await auth.users(), ["alice"]);
});

test("plain: refusals (name not nodeprepped, no password, SASLprep failure, ifAbsent on an existing account)", async () => {
  const { auth, accounts } = await provider();
  assert.equal(await auth.createUser("Alice", "password1"), [undefined, "invalid-username"]);
  assert.equal(await auth.createUser("bob", undefined as unknown as string), [undefined, "no-password"]);
  assert.equal(await auth.createUser("bob", "bad\u0007pw"), [undefined, "password fails SASLprep"]);
  assert.not.ok(await auth.userExists("bob"));
  assert.equal(await auth.createUser("bob", "first pass"), [true, undefined]);
  assert.equal(await auth.createUser("bob", "second pass", { ifAbsent: true }), [undefined, "user-exists"]);
  assert.equal(await accounts.get("bob"), { password: "first pass" });
});

test("plain: setPassword keeps other fields; a SCRAM record exists but matches no password", async () => {
  const { auth, accounts } = await provider();
  await accounts.set("carol", { password: "old", extra: "kept" });
  assert.equal(await auth.setPassword("carol", "new one"), [true, undefined]);
  assert.equal(await accounts.get("carol"), { password: "new one", extra: "kept" });
  assert.equal(await auth.setPassword("nobody", "x"), [undefined, "no-such-user"]);
  await accounts.set("dave", { salt: "s", stored_key: "0".repeat(40), server_key: "0".repeat(40), iteration_count: 4096 });
  assert.ok(await auth.userExists("dave"));
  assert.not.ok(await auth.testPassword("dave", ""));
  assert.not.ok(await auth.testPassword("dave", "anything"));
});

test("plain: deleteUser removes the record and fires the global user-deleted", async () => {
  const { rt, auth, accounts } = await provider();
  await auth.createUser("erin", "password1");
  const events: unknown[] = [];
  rt.globalEvents.hook("user-deleted", (e) => void events.push(e));
  assert.equal(await auth.deleteUser("erin"), [true, undefined]);
  assert.is(await accounts.get("erin"), undefined);
  assert.equal(events, [{ username: "erin", host: "example.com" }]);
});

// --- on a server with internal storage ---

let rt: Runtime | undefined;
test.after(async () => {
  await rt?.stop();
});

test("authentication = internal_plain: /register creates accounts/<user>.dat = { password }, prosodyctl manages it", async () => {
  setLogLevel("error");
  const port = await freePort();
  const { dir, config } = tempConfig(`
data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
storage = "internal"
authentication = "internal_plain"
VirtualHost "example.com"
modules_enabled = { "invites", "invites_register", "invites_register_web", "http" }
`);
  rt = await startServer(await loadConfigFile(config), { cwd: dir });
  const invites = rt.modules.get("example.com", "invites")!.exports as InvitesApi;
  const [invite] = await invites.createAccount();
  const form = await rawRequest(port, `GET /register?t=${invite!.token} HTTP/1.1\r\nHost: example.com\r\n\r\n`);
  assert.is(form.status, 200, "the form is served (was 404 without mod_auth_internal_plain)");
  const body = new URLSearchParams({ user: "Webuser", password: "plain pass 1", token: invite!.token }).toString();
  const r = await rawRequest(
    port,
    `POST /register?t=${invite!.token} HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  assert.is(r.status, 200);
  assert.match(r.body.toString(), "Congratulations!");
  const file = join(dir, "data", "example%2ecom", "accounts", "webuser.dat");
  assert.is(readFileSync(file, "utf8"), 'return {\n\t["password"] = "plain pass 1";\n};\n');

  // prosodyctl with the same config: passwd rewrites the plain record, adduser makes one, deluser removes it
  const passwd = await prosodyctl(["--config", config, "passwd", "webuser@example.com"], { cwd: dir, input: "changed pass 2\nchanged pass 2\n" });
  assert.is(passwd.code, 0, passwd.stdout + passwd.stderr);
  assert.match(readFileSync(file, "utf8"), '["password"] = "changed pass 2";');
  const add = await prosodyctl(["--config", config, "adduser", "cli@example.com"], { cwd: dir, input: "cli pass 33\ncli pass 33\n" });
  assert.is(add.code, 0, add.stdout + add.stderr);
  const cliFile = join(dir, "data", "example%2ecom", "accounts", "cli.dat");
  assert.is(readFileSync(cliFile, "utf8"), 'return {\n\t["password"] = "cli pass 33";\n};\n');
  const del = await prosodyctl(["--config", config, "deluser", "cli@example.com"], { cwd: dir });
  assert.is(del.code, 0, del.stdout + del.stderr);
  assert.not.ok(existsSync(cliFile));
});

test.run();
