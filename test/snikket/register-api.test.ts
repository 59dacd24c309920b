/**
 * mod_invites_register_api (spec invites-suite §9): every route and status code, upstream's field
 * set, and our deliberate differences: a reset spends its invite (and `user-password-reset` gets
 * the invite), one single-use invite registers one account however many requests race, and bad
 * bodies are 400s, never 500s.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { KeyvalStore } from "../../src/storage/types.js";
import type { AuthProvider } from "../../plugins/mod_auth_internal_hashed/mod_auth_internal_hashed.js";
import { assertTokenHeaders } from "../helpers/golden.js";
import type { RawResponse } from "../helpers/http.js";
import { jsonOf, startTestServer, type TestServer } from "./_helpers.js";

const HOST = "example.com";
let srv: TestServer;
let auth: AuthProvider;

const post = (body: unknown, opts: { type?: string | null } = {}) =>
  srv.request("POST", "/register_api/register", { body: typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body), ...opts });
const getInvite = (token: string) => srv.request("GET", `/register_api/invite/${token}`);

async function account(...args: Parameters<ReturnType<TestServer["invites"]>["createAccount"]>): Promise<string> {
  const [invite, err] = await srv.invites().createAccount(...args);
  assert.ok(invite, String(err));
  return invite!.token;
}

function secretHeaders(r: RawResponse, label: string) {
  assertTokenHeaders((name) => r.header(name), true, label);
}

test.before(async () => {
  srv = await startTestServer(`
VirtualHost "${HOST}"
modules_enabled = { "http", "invites", "invites_register", "invites_register_api", "test_recorder" }
site_name = "Example Chat"
`);
  auth = srv.exports(HOST, "auth_internal_hashed");
  assert.equal(await auth.createUser("alice", "old password"), [true, undefined]);
});

test.after(async () => {
  await srv?.stop();
});

// --- GET /register_api/invite/<token> ---

test("GET an account invite: 200 JSON with site_name, token, domain, uri, type (no jid, inviter, reset)", async () => {
  const token = await account();
  const r = await getInvite(token);
  assert.is(r.status, 200);
  assert.is(r.header("content-type"), "application/json");
  secretHeaders(r, "invite view");
  assert.equal(jsonOf(r), { site_name: "Example Chat", token, domain: HOST, uri: `xmpp:${HOST}?register;preauth=${token}`, type: "register" });
  // CORS as Prosody's mod_http sends it for every app; Link and its Expose-Headers are the portal's.
  assert.is(r.header("access-control-allow-origin"), "*");
  assert.is(r.header("access-control-expose-headers"), undefined);
  assert.is(r.header("link"), undefined);
  assert.is((await getInvite(token)).status, 200, "viewing never uses the invite");
});

test("GET a contact invite: type roster and the inviter; a reset invite: reset = the account", async () => {
  const [contact] = await srv.invites().createContact("alice", true);
  assert.equal(jsonOf(await getInvite(contact!.token)), {
    site_name: "Example Chat", token: contact!.token, domain: HOST, uri: `xmpp:alice@${HOST}?roster;preauth=${contact!.token};ibr=y`, type: "roster", inviter: "alice",
  });
  const [reset] = await srv.invites().createAccountReset("alice");
  const body = jsonOf(await getInvite(reset!.token));
  assert.is(body.reset, "alice");
  assert.is(body.type, "register");
});

test("GET an unknown, expired or empty token: 404", async () => {
  assert.is((await getInvite("nosuchtoken")).status, 404);
  assert.is((await getInvite(await account(undefined, undefined, -10))).status, 404);
  assert.is((await srv.request("GET", "/register_api/invite/")).status, 404);
  const bare = await srv.request("GET", "/register_api/invite");
  assert.ok(bare.status === 404 || bare.status === 301, `no token at all: ${bare.status}`);
});

// --- POST /register_api/register ---

test("POST registers: 200 { jid }, the account with that password, the invite spent, user-registered with source and invite", async () => {
  const token = await account(undefined, { roles: { "prosody:admin": true } });
  const r = await post({ username: "Bob", password: "bob secret", token });
  assert.is(r.status, 200);
  assert.is(r.header("content-type"), "application/json");
  secretHeaders(r, "register");
  assert.equal(jsonOf(r), { jid: `bob@${HOST}` });
  assert.ok(await auth.testPassword("bob", "bob secret"));
  assert.is((await getInvite(token)).status, 404, "the invite is spent");
  assert.is((await post({ username: "bob2", password: "x", token })).status, 404, "and cannot register another account");
  const registered = srv.events().filter((e) => e.name === "user-registered" && e.event.username === "bob");
  assert.is(registered.length, 1);
  assert.is(registered[0]!.event.source, "mod_invites_register_api");
  assert.is(registered[0]!.event.validated_invite.token, token);
  assert.is(registered[0]!.event.ip, "127.0.0.1");
  const roles = (await srv.rt.storage.open(HOST, "roles", "keyval")) as KeyvalStore;
  assert.equal(await roles.get("bob"), { "prosody:admin": true }, "mod_invites_register saw the invite");
});

test("POST 400: no body, wrong or parameterised Content-Type, bad JSON, bad UTF-8, not an object, wrong types", async () => {
  const token = await account();
  const good = { username: "carol", password: "pw", token };
  const cases: Array<[string, RawResponse]> = [
    ["no body", await srv.request("POST", "/register_api/register")],
    ["form type", await post(good, { type: "application/x-www-form-urlencoded" })],
    ["charset parameter (upstream wants exactly application/json)", await post(good, { type: "application/json; charset=utf-8" })],
    ["no type", await post(good, { type: null })],
    ["bad JSON", await post('{"username": "carol", ')],
    ["bad UTF-8", await post(Buffer.concat([Buffer.from('{"username": "'), Buffer.from([0xff, 0xfe]), Buffer.from(`", "password": "pw", "token": "${token}"}`)]))],
    ["array", await post([good])],
    ["string", await post('"carol"')],
    ["null", await post("null")],
    ["number username", await post({ ...good, username: 12 })],
    ["object password", await post({ ...good, password: { a: 1 } })],
    ["number token", await post({ ...good, token: 5 })],
    ["missing username", await post({ password: "pw", token })],
    ["empty password", await post({ username: "carol", password: "", token })],
    ["name nodeprep refuses", await post({ ...good, username: "carol@home" })],
    ["name too long", await post({ ...good, username: "c".repeat(1024) })],
  ];
  for (const [label, r] of cases) assert.is(r.status, 400, label);
  assert.not.ok(await auth.userExists("carol"));
  assert.is((await getInvite(token)).status, 200, "a refused request leaves the invite");
});

test("POST 404: unknown, missing or expired token", async () => {
  assert.is((await post({ username: "dave", password: "pw", token: "nosuchtoken" })).status, 404);
  assert.is((await post({ username: "dave", password: "pw" })).status, 404);
  assert.is((await post({ username: "dave", password: "pw", token: await account(undefined, undefined, -10) })).status, 404);
  assert.not.ok(await auth.userExists("dave"));
});

test("POST 409: the username is taken (the invite stays)", async () => {
  const token = await account();
  assert.is((await post({ username: "alice", password: "pw", token })).status, 409);
  assert.ok(await auth.testPassword("alice", "old password"));
  assert.is((await getInvite(token)).status, 200);
});

test("POST 403: user-registering refuses; a username-bound invite used for another name", async () => {
  const token = await account();
  assert.is((await post({ username: "vetoed", password: "pw", token })).status, 403);
  assert.not.ok(await auth.userExists("vetoed"));
  assert.is((await getInvite(token)).status, 200, "a refusal leaves the invite");
  const bound = await account("erin");
  assert.is((await post({ username: "frank", password: "pw", token: bound })).status, 403);
  assert.is((await post({ username: "erin", password: "pw", token: bound })).status, 200);
});

test("POST 413: a body over 16 KiB is refused before it is read", async () => {
  const token = await account();
  const r = await post({ username: "gina", password: "p".repeat(20_000), token });
  assert.is(r.status, 413);
  assert.not.ok(await auth.userExists("gina"));
});

test("other methods on the routes are 4xx, never 500", async () => {
  for (const [method, path] of [["GET", "/register_api/register"], ["PUT", "/register_api/register"], ["POST", "/register_api/invite/x"], ["DELETE", "/register_api/invite/x"]] as const) {
    const r = await srv.request(method, path, { body: "{}" });
    assert.ok(r.status >= 400 && r.status < 500, `${method} ${path}: ${r.status}`);
  }
});

// --- password reset (upstream's bug: the reset invite was never spent) ---

test("reset: another account 403; its own account: 200, new password, invite spent, user-password-reset carries the invite", async () => {
  const [reset] = await srv.invites().createAccountReset("alice");
  const token = reset!.token;
  assert.is((await post({ username: "bob", password: "hijack", token })).status, 403);
  assert.ok(await auth.testPassword("bob", "bob secret"));
  const r = await post({ username: "alice", password: "new password", token });
  assert.is(r.status, 200);
  assert.equal(jsonOf(r), { jid: `alice@${HOST}` });
  assert.ok(await auth.testPassword("alice", "new password"));
  // Fails upstream: the reset link stayed valid for its 24 hours.
  assert.is((await getInvite(token)).status, 404, "the reset invite is spent");
  assert.is((await post({ username: "alice", password: "again", token })).status, 404);
  assert.ok(await auth.testPassword("alice", "new password"));
  const resets = srv.events().filter((e) => e.name === "user-password-reset");
  assert.is(resets.length, 1);
  assert.is(resets[0]!.event.username, "alice");
  assert.is(resets[0]!.event.validated_invite.token, token, "the payload is the registration table, not a bare username");
  assert.is(resets[0]!.event.source, "mod_invites_register_api");
});

test("reset of an account deleted since: 403, the invite stays usable for nothing else", async () => {
  assert.equal(await auth.createUser("henry", "pw"), [true, undefined]);
  const [reset] = await srv.invites().createAccountReset("henry");
  assert.equal(await auth.deleteUser("henry"), [true, undefined]);
  assert.is((await post({ username: "henry", password: "pw2", token: reset!.token })).status, 403);
  assert.not.ok(await auth.userExists("henry"), "not re-created by the reset");
});

test("reset: user-registering is fired for a reset too (with allow_reset), and its refusal is a 403 that spends nothing", async () => {
  assert.equal(await auth.createUser("vetoed", "vetoed pw"), [true, undefined]);
  const [reset] = await srv.invites().createAccountReset("vetoed");
  assert.is((await post({ username: "vetoed", password: "changed", token: reset!.token })).status, 403);
  assert.ok(await auth.testPassword("vetoed", "vetoed pw"));
  assert.is((await getInvite(reset!.token)).status, 200);
  const seen = srv.events().filter((e) => e.name === "user-registering" && e.event.username === "vetoed");
  assert.is(seen.at(-1)!.event.allow_reset, "vetoed");
});

// --- single use under concurrency ---

test("one single-use invite, 12 parallel registrations: exactly one 200 and one account", async () => {
  const token = await account();
  const names = Array.from({ length: 12 }, (_, i) => `racer${i}`);
  const answers = await Promise.all(names.map((username) => post({ username, password: "pw", token })));
  const statuses = answers.map((r) => r.status);
  assert.is(statuses.filter((s) => s === 200).length, 1, String(statuses));
  assert.ok(statuses.every((s) => s === 200 || s === 404), String(statuses));
  const made = (await Promise.all(names.map((n) => auth.userExists(n)))).filter(Boolean);
  assert.is(made.length, 1);
  const winner = names[statuses.indexOf(200)]!;
  assert.ok(await auth.userExists(winner));
});

test("a reusable group invite registers several accounts", async () => {
  const [group] = await srv.invites().createGroup(["team"], undefined, 3600);
  for (const username of ["ida", "jack"]) assert.is((await post({ username, password: "pw", token: group!.token })).status, 200, username);
  assert.is((await getInvite(group!.token)).status, 200);
});

test.run();
