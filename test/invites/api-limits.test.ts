/**
 * Rate limits on the routes that create invites or accounts (plugins/mod_invites_api/limits.ts,
 * mod_invites_register_web): per key and per client address, 429 + Retry-After + RateLimit headers.
 * Each test comes from its own X-Forwarded-For address (loopback is a trusted proxy by default),
 * so their address buckets are apart.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { main } from "../../src/cli/prosodyctl.js";
import { startServer } from "../../src/server.js";
import { tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";

let rt: Runtime;
let port: number;
let config: string;
let dir: string;

test.before(async () => {
  setLogLevel("error");
  port = await freePort();
  ({ dir, config } = tempConfig(`
data_path = "$DIR/data"
http_ports = { ${port} }
storage = "sql"
invites_api_rate = "3/minute"
invites_api_rate_per_ip = "10/minute"
register_web_rate_per_ip = "2/minute"
VirtualHost "example.com"
modules_enabled = { "http", "invites", "invites_api", "invites_page", "register_apps", "invites_register", "invites_register_web" }
`));
  rt = await startServer(await loadConfigFile(config), { cwd: dir });
});

test.after(async () => {
  await rt?.stop();
});

async function newKey(...flags: string[]): Promise<string> {
  let out = "";
  const code = await main(["--config", config, "mod_invites_api", "create", "example.com", "t", ...flags], { stdout: (t) => void (out += t), stderr: (t) => void (out += t), cwd: dir, env: {} });
  assert.is(code, 0, out);
  return out.trim();
}

const api = (key: string, from: string) =>
  rawRequest(port, `GET /invites_api HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${key}\r\nX-Forwarded-For: ${from}\r\n\r\n`);

async function invitesStored(): Promise<number> {
  const kv = await rt.storage.open("example.com", "invite_token", "keyval");
  return Object.keys((await kv.get(null)) ?? {}).length;
}

test("a key gets its burst with RateLimit headers, then 429 + Retry-After (JSON); nothing is created", async () => {
  const key = await newKey();
  for (let i = 0; i < 3; i++) {
    const r = await api(key, "198.51.100.1");
    assert.is(r.status, 201);
    assert.is(r.header("ratelimit-policy"), '"address";q=10;w=60, "key";q=3;w=60');
    assert.match(r.header("ratelimit") ?? "", new RegExp(`^"address";r=${9 - i};t=\\d+, "key";r=${2 - i};t=\\d+$`));
  }
  const before = await invitesStored();
  const r = await api(key, "198.51.100.1");
  assert.is(r.status, 429);
  assert.is(r.header("retry-after"), "20"); // 3 a minute: one every 20 s
  assert.match(r.header("content-type") ?? "", /application\/json/);
  assert.equal(JSON.parse(r.body.toString()), { error: "rate-limited", message: "Too many requests: try again later.", retry_after: 20 });
  assert.match(r.header("ratelimit") ?? "", /"key";r=0;t=60$/);
  assert.is(await invitesStored(), before);
  // The limit is the key's, wherever it comes from.
  assert.is((await api(key, "198.51.100.2")).status, 429);
});

test("a key's own --rate replaces the host's invites_api_rate", async () => {
  const key = await newKey("--rate", "5/minute");
  const statuses = [];
  for (let i = 0; i < 6; i++) statuses.push((await api(key, "198.51.100.3")).status);
  assert.equal(statuses, [201, 201, 201, 201, 201, 429]);
});

test("per address: wrong keys get Prosody's bare 403 until the address's budget is spent, then 429", async () => {
  const good = await newKey();
  const wrong = `${good.split("/")[0]}/${"x".repeat(36)}`;
  for (let i = 0; i < 10; i++) {
    const r = await api(wrong, "203.0.113.9");
    assert.is(r.status, 403);
    assert.is(r.header("ratelimit"), undefined, "no headers of ours on Prosody's 403");
  }
  const r = await api(wrong, "203.0.113.9");
  assert.is(r.status, 429);
  assert.is(r.header("retry-after"), "6");
  // The valid key is refused from that address too, and works from another.
  assert.is((await api(good, "203.0.113.9")).status, 429);
  assert.is((await api(good, "203.0.113.10")).status, 201);
  // IPv6: one bucket per /64.
  for (let i = 0; i < 10; i++) assert.is((await api(wrong, `2001:db8:1:2::${i + 1}`)).status, 403);
  assert.is((await api(wrong, "2001:db8:1:2:ffff::99")).status, 429);
});

test("other modules apply the same buckets through depends('invites_api').rateLimit", async () => {
  const key = await newKey();
  const exports = rt.modules.get("example.com", "invites_api")!.exports as import("../../plugins/mod_invites_api/mod_invites_api.js").InvitesApiExports;
  const request = { headers: { authorization: `Bearer ${key}` }, url: { path: "/admin_api", query: undefined }, ip: "198.51.100.20", method: "GET" } as never;
  const auth = await exports.authorize(request, "create");
  assert.ok(auth.ok);
  for (let i = 0; i < 3; i++) assert.is(exports.rateLimit({ request, response: { headers: {} } } as never, auth), undefined);
  const refused = exports.rateLimit({ request, response: { headers: {} } } as never, auth);
  assert.is(refused?.statusCode, 429);
  // …and /invites_api shares the key's bucket.
  assert.is((await api(key, "198.51.100.21")).status, 429);
});

test("the registration form: each POST counts against the address; past it 429 with Retry-After", async () => {
  const form = "user=alice&password=secretpassword&token=nosuchtoken";
  const post = (from: string) =>
    rawRequest(port, `POST /register HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: ${from}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`);
  const first = await post("192.0.2.50");
  assert.is(first.status, 303, "a bad token: to the invite page, as Prosody");
  assert.is(first.header("ratelimit-policy"), undefined, "the pages keep Prosody's headers");
  assert.is((await post("192.0.2.50")).status, 303);
  const r = await post("192.0.2.50");
  assert.is(r.status, 429);
  assert.is(r.header("retry-after"), "30");
  assert.is(r.header("ratelimit-policy"), '"address";q=2;w=60');
  assert.is(r.header("ratelimit"), '"address";r=0;t=60');
  assert.match(r.header("content-type") ?? "", /text\/html/);
  assert.match(r.body.toString(), /Too many attempts from your network\. Please try again in 30 seconds\./);
  assert.is((await post("192.0.2.51")).status, 303, "another address is not limited");
  // The refusal page is in the visitor's language, like the form's other pages.
  const german = await rawRequest(port, `POST /register HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 192.0.2.50\r\nAccept-Language: de\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`);
  assert.is(german.status, 429);
  assert.is(german.header("content-language"), "de");
  assert.match(german.body.toString(), /Zu viele Versuche aus deinem Netz\. Bitte versuche es in \d+ Sekunden noch einmal\./);
});

test.run();
