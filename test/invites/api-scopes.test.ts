/**
 * API key scopes and expiry (our extensions, plugins/mod_invites_api/authorize.ts): a key without
 * `scopes` is Prosody's and may create; a key lacking "create" gets 403 with a JSON reason; an
 * expired key 401; Prosody's bare 403 stays for missing and wrong keys.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import { authorize, scopesOf } from "../../plugins/mod_invites_api/authorize.js";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
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
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "http" }
`));
  rt = await startServer(await loadConfigFile(config), { cwd: dir });
});

test.after(async () => {
  await rt?.stop();
});

async function newKey(change: Record<string, unknown> = {}): Promise<string> {
  const key = (await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir })).stdout.trim();
  const store = await rt.storage.open("example.com", "invite_api_keys", "map");
  const id = key.split("/")[0]!;
  const old = (await store.get(null, id)) as Record<string, unknown>;
  await store.set(null, id, { ...old, ...change } as never);
  return key;
}

const post = (key: string) => rawRequest(port, `POST /invites_api HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${key}\r\nContent-Length: 0\r\n\r\n`);

test("a key without scopes (Prosody's record) creates invites", async () => {
  const r = await post(await newKey());
  assert.is(r.status, 201);
});

test("a key whose scopes lack create gets 403 with a JSON reason", async () => {
  const r = await post(await newKey({ scopes: ["read", "revoke"] }));
  assert.is(r.status, 403);
  assert.match(r.header("content-type") ?? "", /application\/json/);
  assert.equal(JSON.parse(r.body.toString()).error, "insufficient-scope");
});

test("admin implies create; unknown scope names grant nothing", async () => {
  assert.is((await post(await newKey({ scopes: ["admin"] }))).status, 201);
  assert.is((await post(await newKey({ scopes: ["everything", "Create"] }))).status, 403);
});

test("an expired key gets 401 with a JSON reason; one not yet expired works", async () => {
  const now = Math.floor(Date.now() / 1000);
  const r = await post(await newKey({ expires: now - 1 }));
  assert.is(r.status, 401);
  assert.equal(JSON.parse(r.body.toString()).error, "key-expired");
  assert.is((await post(await newKey({ expires: now + 3600 }))).status, 201);
});

test("missing and wrong keys keep Prosody's bare 403", async () => {
  const key = await newKey();
  const r = await post(key.replace(/.$/, (c) => (c === "a" ? "b" : "a")));
  assert.is(r.status, 403);
  assert.not.match(r.header("content-type") ?? "", /json/);
  const none = await rawRequest(port, "POST /invites_api HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n");
  assert.is(none.status, 403);
});

test("authorize() reports the reason, expiry checked before scope", async () => {
  const key = await newKey({ scopes: ["read"], expires: 100 });
  const store = await rt.storage.open("example.com", "invite_api_keys", "map");
  const request = { headers: { authorization: `Bearer ${key}` }, url: { path: "/", query: undefined } } as never;
  assert.equal((await authorize(store, request, "create", 99)).ok, false);
  const early = await authorize(store, request, "read", 99);
  assert.ok(early.ok);
  const late = await authorize(store, request, "read", 100);
  assert.equal(late.ok ? "ok" : late.reason, "expired");
  const scoped = await authorize(store, request, "revoke", 99);
  assert.equal(scoped.ok ? "ok" : scoped.reason, "scope");
  assert.equal(scopesOf({ id: "x", created_at: 0 }), ["create"]);
});

test.run();
