/**
 * Rate limits on every route that creates invites or registers accounts, beyond mod_invites_api's
 * own endpoint and the registration form (tested in api-limits.test.ts): the admin API's creating
 * routes share mod_invites_api's buckets (per key, per address), mod_invites_register_api limits
 * registrations per address, mod_invites_bootstrap guesses at its secret. Also: mod_invites_api
 * serves its OpenAPI document without mod_http_admin_api.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { jsonOf, startTestServer, type TestServer } from "../snikket/_helpers.js";

let srv: TestServer;
let key: string;

test.before(async () => {
  srv = await startTestServer(`
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "http_admin_api", "invites_register_api", "invites_bootstrap", "http" }
invites_api_rate = "3/minute"
invites_api_rate_per_ip = false
register_api_rate_per_ip = "2/minute"
invites_bootstrap_secret = "a secret of some length"
invites_bootstrap_index = 1
invites_bootstrap_rate_per_ip = "2/minute"

VirtualHost "docs.example.com"
modules_enabled = { "invites", "invites_api", "http" }
`);
  const store = await srv.rt.storage.open("example.com", "invite_api_keys", "map");
  await store.set(null, "adm", { id: "adm", token: "s3cret-admin-key", created_at: 0, scopes: ["admin"] } as never);
  key = "adm/s3cret-admin-key";
});
test.after(() => srv?.stop());

const auth = () => ({ Authorization: `Bearer ${key}` });

test("admin API: creating routes share the key's bucket (429 + Retry-After + RateLimit); reads are not limited", async () => {
  const statuses: number[] = [];
  let last;
  for (let i = 0; i < 5; i++) {
    last = await srv.request("POST", "/admin_api/invites/account", { body: "{}", headers: auth() });
    statuses.push(last.status);
  }
  // The bucket holds `limit` at once (3), then refills at 3 a minute.
  assert.equal(statuses.slice(0, 3), [200, 200, 200], statuses.join());
  assert.is(last!.status, 429, statuses.join());
  assert.match(last!.header("retry-after") ?? "", /^\d+$/);
  assert.ok(last!.header("ratelimit") !== undefined || last!.header("ratelimit-policy") !== undefined, "RateLimit headers");
  assert.is(jsonOf(last!).error, "rate-limited");
  // The same key on mod_invites_api's endpoint: the same bucket, already empty.
  const api = await srv.request("POST", "/invites_api", { headers: auth() });
  assert.is(api.status, 429);
  const list = await srv.request("GET", "/admin_api/invites", { headers: auth() });
  assert.is(list.status, 200, "listing is not charged");
});

test("register_api: registrations per client address, 429 JSON with Retry-After", async () => {
  const statuses: number[] = [];
  let last;
  for (let i = 0; i < 3; i++) {
    last = await srv.request("POST", "/register_api/register", { body: JSON.stringify({ username: `u${i}`, password: "pw pw pw 1", token: "no-such-token" }) });
    statuses.push(last.status);
  }
  assert.equal(statuses, [404, 404, 429]);
  assert.match(last!.header("retry-after") ?? "", /^\d+$/);
  assert.is(jsonOf(last!).error, "rate-limited");
});

test("bootstrap: guesses at the secret per client address", async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 3; i++) statuses.push((await srv.request("GET", "/invites_bootstrap?token=guess")).status);
  assert.equal(statuses, [403, 403, 429]);
  const right = await srv.request("GET", `/invites_bootstrap?token=${encodeURIComponent("a secret of some length")}`);
  assert.is(right.status, 429, "the right secret waits too: the limit is per address");
});

test("mod_invites_api serves its OpenAPI document without mod_http_admin_api", async () => {
  const r = await srv.request("GET", "/invites_api/openapi.json", { host: "docs.example.com" });
  assert.is(r.status, 200);
  const doc = jsonOf(r);
  assert.match(doc.openapi, /^3\.1\./);
  const path = Object.keys(doc.paths).find((p) => p.endsWith("/invites_api"));
  assert.ok(path, Object.keys(doc.paths).join());
  assert.ok(doc.paths[path!].post.responses["429"], "documents the 429");
});

test.run();
