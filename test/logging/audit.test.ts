/**
 * Audit lines in the server log: one info line per invite created through mod_invites_api (the
 * key id and the kind of invite, never the key's secret nor the invite's token) and one per
 * account created, on every path (web form in the server's log; prosodyctl adduser on its console),
 * in Prosody's wording ("User account created: user@host", mod_register_ibr).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl } from "../helpers/cli.js";
import { rawRequest } from "../helpers/http.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";

let server: ServerProcess;

test.before(async () => {
  server = await startServerProcess(`
log = { debug = "$DIR/all.log" }
VirtualHost "example.com"
modules_enabled = { "http", "invites", "invites_api", "invites_register", "invites_register_web" }
`);
});

test.after(async () => {
  await server?.stop();
});

const logText = () => readFileSync(join(server.dir, "all.log"), "utf8");

async function waitForLog(text: string): Promise<string> {
  const until = Date.now() + 10_000;
  for (;;) {
    const line = logText().split("\n").find((l) => l.includes(text));
    if (line) return line;
    if (Date.now() > until) throw new Error(`no "${text}" in the log:\n${logText()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("an invite via the API and a registration through the web form each log one info line; no secret, no token", async () => {
  const made = await prosodyctl(["--config", server.config, "mod_invites_api", "create", "example.com"], { cwd: server.dir });
  const key = made.stdout.trim();
  const [keyId, secret] = key.split("/") as [string, string];
  assert.ok(keyId && secret && secret.length >= 16, made.stdout + made.stderr);

  const created = await rawRequest(server.port, `GET /invites_api HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`);
  assert.is(created.status, 201);
  const location = created.headers.find(([k]) => k.toLowerCase() === "location")?.[1] ?? "";
  const token = (/preauth=([^&;]+)/.exec(location) ?? /\/invites_page\?([^&]+)/.exec(location))?.[1];
  assert.ok(token, location);

  const line = await waitForLog("via the API");
  assert.match(line, new RegExp(`^\\w{3} \\d\\d [\\d:]{8} example\\.com:invites_api\\tinfo\\tCreated an account invite via the API with key ${keyId}$`));

  const form = new URLSearchParams({ user: "carol", password: "a good long password", token: token! }).toString();
  const registered = await rawRequest(
    server.port,
    `POST /register HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\nConnection: close\r\n\r\n${form}`,
  );
  assert.is(registered.status, 200);
  assert.match(registered.body.toString(), /Congratulations/);
  assert.match(await waitForLog("User account created"), /^\w{3} \d\d [\d:]{8} example\.com:invites_register_web\tinfo\tUser account created: carol@example\.com \(through the web form\)$/);

  const all = logText();
  assert.is(all.split("\n").filter((l) => l.includes("via the API")).length, 1, "one line per invite");
  assert.is(all.split("\n").filter((l) => l.includes("User account created")).length, 1, "one line per account");
  assert.not.ok(all.includes(secret), "the key's secret is never logged, at any level");
  assert.not.ok(all.includes(token!), "the invite's token is never logged, at any level");
});

test("prosodyctl adduser logs the same line (shown with -v)", async () => {
  const r = await prosodyctl(["--config", server.config, "-v", "adduser", "dave@example.com"], { cwd: server.dir, input: "a good long password\na good long password\n" });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.ok(r.stderr.split("\n").includes("prosodyctl          info\tUser account created: dave@example.com (prosodyctl adduser)"), r.stderr);
  assert.not.match(r.stderr + r.stdout, /a good long password/);
});

test.run();
