/**
 * mod_http_admin_api's invite endpoints (spec §12) with our API keys: every route, its statuses,
 * auth per scope (401 + WWW-Authenticate, 403), and every JSON answer checked against the schema
 * the served OpenAPI document gives for that route and status.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import Ajv2020Import from "ajv/dist/2020.js";
import { authFailureReply } from "../../plugins/mod_http_admin_api/auth-reply.js";
import { startHost, type Host, type Reply } from "./_harness.js";

const Ajv2020 = ((Ajv2020Import as unknown as { default?: unknown }).default ?? Ajv2020Import) as typeof Ajv2020Import;
const ajv = new Ajv2020({ strict: false });

let h: Host;
let admin: string;
let doc: any;

test.before(async () => {
  h = await startHost();
  admin = await h.key(["admin"]);
  const r = await h.req("GET", "/admin_api/openapi.json");
  assert.is(r.status, 200);
  doc = r.json();
});
test.after(() => h?.stop());

/** Asserts the status, and that the body matches the document's schema for this route and status. */
function conforms(r: Reply, method: string, template: string, status: number): any {
  assert.is(r.status, status, `${method} ${template}: ${r.body.toString().slice(0, 300)}`);
  assert.match(r.header("content-type") ?? "", /^application\/json/);
  const op = doc.paths[template]?.[method.toLowerCase()];
  assert.ok(op, `the document has ${method} ${template}`);
  const schema = op.responses[String(status)]?.content?.["application/json"]?.schema;
  assert.ok(schema, `the document gives a schema for ${method} ${template} → ${status}`);
  const body = r.json();
  const validate = ajv.compile(schema);
  assert.ok(validate(body), `${method} ${template} → ${status} matches its schema: ${JSON.stringify(validate.errors)}`);
  return body;
}

const post = (path: string, body: unknown, key = admin) => h.req("POST", `/admin_api/invites/${path}`, { key, body: body === undefined ? undefined : JSON.stringify(body) });

test("POST /invites/account: the invite object with every field, source naming the key", async () => {
  const r = await post("account", { note: "for Ann", ttl: 3600, groups: ["g1"], roles: ["prosody:member"] });
  const inv = conforms(r, "POST", "/admin_api/invites/account", 200);
  assert.equal(Object.keys(inv).sort(), ["created_at", "expired", "expires", "groups", "id", "inviter", "jid", "landing_page", "max_uses", "note", "reset", "reusable", "revoked_at", "roles", "source", "type", "uri", "uses"]);
  assert.is(inv.type, "register");
  assert.is(inv.jid, "example.com");
  assert.is(inv.uri, `xmpp:example.com?register;preauth=${inv.id}`);
  assert.is(inv.expires - inv.created_at, 3600);
  assert.equal(inv.groups, ["g1"]);
  assert.equal(inv.roles, ["prosody:member"]);
  assert.is(inv.note, "for Ann");
  assert.is(inv.reusable, false);
  assert.is(inv.reset, false);
  assert.is(inv.source, `api/token/${admin.split("/")[0]}/admin_api`);
  // Stored as Prosody stores it: roles as 0.12's map, source/note/groups in additional_data.
  const store = await h.rt.storage.open("example.com", "invite_token", "map");
  const rec = (await store.get(null, inv.id)) as any;
  assert.equal(rec.additional_data.roles, { "prosody:member": true });
  assert.is(rec.additional_data.note, "for Ann");
});

test("POST /invites/account with no body, and with a username (nodeprepped)", async () => {
  conforms(await post("account", undefined), "POST", "/admin_api/invites/account", 200);
  const inv = conforms(await post("account", { username: "Bob" }), "POST", "/admin_api/invites/account", 200);
  assert.is(inv.jid, "bob@example.com");
  const bad = conforms(await post("account", { username: "a b@c" }), "POST", "/admin_api/invites/account", 400);
  assert.is(bad.field, "username");
});

test("POST /invites/group: reusable with ttl, single-use without, groups required, group_options 501", async () => {
  const reusable = conforms(await post("group", { groups: ["team"], ttl: 600 }), "POST", "/admin_api/invites/group", 200);
  assert.is(reusable.reusable, true);
  assert.equal(reusable.groups, ["team"]);
  const single = conforms(await post("group", { groups: ["team"] }), "POST", "/admin_api/invites/group", 200);
  assert.is(single.reusable, false);
  const none = conforms(await post("group", { groups: [], ttl: 600 }), "POST", "/admin_api/invites/group", 200);
  assert.equal(none.groups, [], "an empty list is accepted, as upstream (the Snikket portal may send one)");
  const missing = conforms(await post("group", { ttl: 5 }), "POST", "/admin_api/invites/group", 400);
  assert.is(missing.field, "groups");
  const empty = conforms(await h.req("POST", "/admin_api/invites/group", { key: admin }), "POST", "/admin_api/invites/group", 400);
  assert.is(empty.error, "bad-request");
  const opts = conforms(await post("group", { groups: ["x"], group_options: { name: "X" } }), "POST", "/admin_api/invites/group", 501);
  assert.is(opts.error, "feature-not-implemented");
});

test("POST /invites/reset: a reset invite for the user; username required", async () => {
  const inv = conforms(await post("reset", { username: "carol" }), "POST", "/admin_api/invites/reset", 200);
  assert.is(inv.reset, true);
  assert.is(inv.jid, "carol@example.com");
  assert.is(inv.expires - inv.created_at, 86400);
  const bad = conforms(await post("reset", {}), "POST", "/admin_api/invites/reset", 400);
  assert.is(bad.field, "username");
});

test("an unknown invite type is 400 unknown-invite-type", async () => {
  const r = await post("contact", {});
  assert.is(r.status, 400);
  assert.is(r.json().error, "unknown-invite-type");
  assert.is(r.json().field, "type");
});

test("request validation: wrong types and ranges are 400 naming the field", async () => {
  for (const [body, field] of [
    [{ ttl: "1h" }, "ttl"],
    [{ ttl: 0 }, "ttl"],
    [{ ttl: 1.5 }, "ttl"],
    [{ groups: "g" }, "groups"],
    [{ groups: [""] }, "groups.0"],
    [{ note: 5 }, "note"],
    [{ max_uses: 0 }, "max_uses"],
    [{ roles: [7] }, "roles.0"],
  ] as const) {
    const r = conforms(await post("account", body), "POST", "/admin_api/invites/account", 400);
    assert.is(r.field, field, JSON.stringify(body));
    assert.is(r.error, "bad-request");
  }
  const notObject = conforms(await post("account", [1]), "POST", "/admin_api/invites/account", 400);
  assert.is(notObject.error, "bad-request");
});

test("invalid-json: bad JSON, non-JSON content type, bad UTF-8 — all 400; a huge body 413", async () => {
  const badJson = await h.req("POST", "/admin_api/invites/account", { key: admin, body: "{nope" });
  assert.is(conforms(badJson, "POST", "/admin_api/invites/account", 400).error, "invalid-json");
  const form = await h.req("POST", "/admin_api/invites/account", { key: admin, body: "note=x", type: "application/x-www-form-urlencoded" });
  assert.is(conforms(form, "POST", "/admin_api/invites/account", 400).error, "invalid-json");
  const utf8 = await h.req("POST", "/admin_api/invites/account", { key: admin, body: Buffer.from([0x7b, 0x22, 0x6e, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) });
  assert.is(conforms(utf8, "POST", "/admin_api/invites/account", 400).error, "invalid-json");
  const charset = await h.req("POST", "/admin_api/invites/account", { key: admin, body: "{}", type: "application/json; charset=utf-8" });
  assert.is(charset.status, 200);
  const huge = await h.req("POST", "/admin_api/invites/account", { key: admin, body: JSON.stringify({ note: "x".repeat(200_000) }) });
  assert.is(huge.status, 413);
});

test("GET /invites and /invites/{id}; DELETE answers the invite, then 404", async () => {
  const inv = conforms(await post("account", { note: "listed" }), "POST", "/admin_api/invites/account", 200);
  const list = conforms(await h.req("GET", "/admin_api/invites", { key: admin }), "GET", "/admin_api/invites", 200);
  assert.ok(list.some((i: any) => i.id === inv.id));
  for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].created_at <= list[i].created_at, "sorted by created_at");
  const one = conforms(await h.req("GET", `/admin_api/invites/${inv.id}`, { key: admin }), "GET", "/admin_api/invites/{id}", 200);
  assert.equal(one, { ...inv, expired: false });
  const del = conforms(await h.req("DELETE", `/admin_api/invites/${inv.id}`, { key: admin }), "DELETE", "/admin_api/invites/{id}", 200);
  assert.is(del.id, inv.id);
  conforms(await h.req("GET", `/admin_api/invites/${inv.id}`, { key: admin }), "GET", "/admin_api/invites/{id}", 404);
  const again = conforms(await h.req("DELETE", `/admin_api/invites/${inv.id}`, { key: admin }), "DELETE", "/admin_api/invites/{id}", 404);
  assert.is(again.error, "item-not-found");
});

test("an expired invite is 404 and left out of the list, shown with include_expired=true", async () => {
  const inv = conforms(await post("account", {}), "POST", "/admin_api/invites/account", 200);
  const store = await h.rt.storage.open("example.com", "invite_token", "map");
  const rec = (await store.get(null, inv.id)) as any;
  await store.set(null, inv.id, { ...rec, expires: rec.created_at - 10 });
  assert.is((await h.req("GET", `/admin_api/invites/${inv.id}`, { key: admin })).status, 404);
  const list = (await h.req("GET", "/admin_api/invites", { key: admin })).json();
  assert.not.ok(list.some((i: any) => i.id === inv.id));
  const shown = conforms(await h.req("GET", `/admin_api/invites/${inv.id}?include_expired=true`, { key: admin }), "GET", "/admin_api/invites/{id}", 200);
  assert.is(shown.expired, true);
  const all = (await h.req("GET", "/admin_api/invites?include_expired=true", { key: admin })).json();
  assert.ok(all.some((i: any) => i.id === inv.id));
});

test("auth: no key, malformed, unknown, expired → 401 with WWW-Authenticate and a JSON error", async () => {
  const expired = await h.key(["admin"], { expires: 1000 });
  const cases: Array<[string | undefined, string]> = [
    [undefined, "not-authorized"],
    ["nokeyslash", "not-authorized"],
    ["k999/nope", "not-authorized"],
    [admin.replace(/.$/, (c) => (c === "a" ? "b" : "a")), "not-authorized"],
    [expired, "key-expired"],
  ];
  for (const [key, error] of cases) {
    const r = await h.req("GET", "/admin_api/invites", { key });
    const body = conforms(r, "GET", "/admin_api/invites", 401);
    assert.is(body.error, error, String(key));
    assert.is(r.header("www-authenticate"), 'Bearer realm="example.com/http_admin_api"');
  }
});

test("scopes: read, create, revoke and admin each allow exactly their routes (403 otherwise)", async () => {
  const read = await h.key(["read"]);
  const create = await h.key(["create"]);
  const revoke = await h.key(["revoke"]);
  const prosodyKey = await h.key(undefined); // Prosody's record: create only
  const target = conforms(await post("account", {}), "POST", "/admin_api/invites/account", 200).id;
  const status = async (key: string, method: string, path: string, body?: unknown) =>
    (await h.req(method, path, { key, body: body === undefined ? undefined : JSON.stringify(body) })).status;
  assert.is(await status(read, "GET", "/admin_api/invites"), 200);
  assert.is(await status(read, "GET", `/admin_api/invites/${target}`), 200);
  assert.is(await status(read, "POST", "/admin_api/invites/account", {}), 403);
  assert.is(await status(read, "DELETE", `/admin_api/invites/${target}`), 403);
  assert.is(await status(create, "POST", "/admin_api/invites/account", {}), 200);
  assert.is(await status(prosodyKey, "POST", "/admin_api/invites/group", { groups: ["g"] }), 200);
  assert.is(await status(create, "GET", "/admin_api/invites"), 403);
  // Handing out roles, and reset links (account takeover), need admin.
  const roles = await h.req("POST", "/admin_api/invites/account", { key: create, body: JSON.stringify({ roles: ["prosody:admin"] }) });
  assert.is(conforms(roles, "POST", "/admin_api/invites/account", 403).error, "insufficient-scope");
  assert.is(await status(create, "POST", "/admin_api/invites/reset", { username: "x" }), 403);
  assert.is(await status(create, "DELETE", `/admin_api/invites/${target}`), 403);
  assert.is(await status(revoke, "GET", "/admin_api/invites"), 403);
  assert.is(await status(revoke, "POST", `/admin_api/invites/${target}/expire`), 200);
  assert.is(await status(revoke, "DELETE", `/admin_api/invites/${target}`), 200);
  assert.is(await status(read, "GET", "/admin_api/users/nobody/invited_by"), 404);
  assert.is(await status(create, "GET", "/admin_api/users/nobody/invited_by"), 403);
});

test("a refusal reason authorize() may add later is a 403 naming it, never a 401 calling the key invalid", () => {
  const r = authFailureReply("rate-limited", "create", "example.com");
  assert.is(r.status, 403);
  assert.equal(r.json, { error: "forbidden", message: "This API key may not do this now (rate-limited)." });
  assert.is(r.headers, undefined);
  assert.is(authFailureReply("unknown", "read", "h").status, 401);
});

test("unknown endpoints are 404 JSON, a wrong method 405 with Allow", async () => {
  const r = await h.req("GET", "/admin_api/nothing", { key: admin });
  assert.is(r.status, 404);
  assert.is(r.json().error, "item-not-found");
  const m = await h.req("PUT", "/admin_api/invites", { key: admin });
  assert.is(m.status, 405);
  assert.is(m.header("allow"), "GET");
  assert.is(m.json().error, "method-not-allowed");
});

test.run();
