/**
 * mod_invites_tracking (§11), mod_invites_groups (§10), mod_invites_default_group (§13.1) and
 * mod_invites_bootstrap (§13.2) on a real server with internal (file) storage: the stored
 * records in Prosody's formats (the files read back by Lua itself), and our deliberate fixes:
 * default_group keeps `additional_data`, bootstrap answers 4xx where Snikket's crashes.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { KeyvalStore, MapStore } from "../../src/storage/types.js";
import type { AuthProvider } from "../../plugins/mod_auth_internal_hashed/mod_auth_internal_hashed.js";
import { assertTokenHeaders } from "../helpers/golden.js";
import { skip } from "../helpers/skip.js";
import { jsonOf, startTestServer, type TestServer } from "./_helpers.js";

const HOST = "example.com";
const SECRET = "bootstrap-Secret-123";
const REGISTER = ["http", "invites", "invites_register", "invites_register_api", "test_recorder"];
let srv: TestServer;

const q = (mods: string[]) => `{ ${mods.map((m) => JSON.stringify(m)).join(", ")} }`;
const kv = (host: string, store: string) => srv.rt.storage.open(host, store, "keyval") as Promise<KeyvalStore>;
const map = (host: string, store: string) => srv.rt.storage.open(host, store, "map") as Promise<MapStore>;
const register = (username: string, token: string, host = HOST) =>
  srv.request("POST", "/register_api/register", { host, body: JSON.stringify({ username, password: "pw", token }) });
const bootstrap = (host: string, query?: string) => srv.request("GET", `/invites_bootstrap${query === undefined ? "" : `?${query}`}`, { host });

/** The file internal storage keeps for `user` in `store` of `host` (Prosody's name encoding). */
const dataFile = (host: string, store: string, user: string) =>
  join(srv.dir, "data", encodeURIComponent(host).replace(/\./g, "%2e").replace(/-/g, "%2d"), store, `${encodeURIComponent(user).replace(/\./g, "%2e")}.dat`);

/** Loads a data file with Lua (as Prosody does: a chunk returning a table) and runs `expr` on it as `t`; its printed result. */
function lua(file: string, expr: string): string | undefined {
  const r = spawnSync("lua5.4", ["-e", `local t = dofile(${JSON.stringify(file)}); io.write(tostring(${expr}))`], { encoding: "utf8" });
  if (r.error) return undefined;
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}
/** The bootstrap list of a stored record: a sequence; a record with the keys "1", "2"… is refused. */
const list = (rec: unknown): any[] => {
  if (rec === undefined) return [];
  if (!Array.isArray(rec)) throw new Error(`the bootstrap list is not a sequence: ${JSON.stringify(rec)}`);
  return rec;
};
const haveLua = spawnSync("sh", ["-c", "command -v lua5.4"]).status === 0;

test.before(async () => {
  srv = await startTestServer(`
VirtualHost "${HOST}"
modules_enabled = ${q([...REGISTER, "invites_tracking", "invites_groups", "invites_default_group", "invites_bootstrap"])}
invites_bootstrap_secret = "${SECRET}"
invites_bootstrap_index = 1
invites_bootstrap_ttl = 600
VirtualHost "old.example"
modules_enabled = ${q(["http", "invites", "invites_bootstrap"])}
invites_bootstrap_secret = "${SECRET}"
invites_bootstrap_index = 1
VirtualHost "next.example"
modules_enabled = ${q(["http", "invites", "invites_bootstrap"])}
invites_bootstrap_secret = "${SECRET}"
invites_bootstrap_index = 2
VirtualHost "snikket.example"
modules_enabled = ${q(["http", "invites", "invites_bootstrap"])}
invites_bootstrap_secret = "${SECRET}"
invites_bootstrap_index = 1
VirtualHost "string.example"
modules_enabled = ${q(["http", "invites", "invites_bootstrap"])}
invites_bootstrap_secret = "${SECRET}"
invites_bootstrap_index = "7"
VirtualHost "unset.example"
modules_enabled = ${q(["http", "invites", "invites_bootstrap"])}
invites_bootstrap_secret = "${SECRET}"
VirtualHost "nosecret.example"
modules_enabled = ${q(["http", "invites", "invites_bootstrap"])}
invites_bootstrap_index = 1
VirtualHost "plain.example"
modules_enabled = ${q([...REGISTER, "invites_default_group"])}
`);
});

test.after(async () => {
  await srv?.stop();
});

// --- mod_invites_tracking ---

test("tracking: the version record under \" \" is written at load, in Prosody's file format", async () => {
  assert.equal(await (await kv(HOST, "invites_tracking")).get(" "), { version: "1" });
  const file = dataFile(HOST, "invites_tracking", " ");
  assert.ok(existsSync(file), file);
  if (haveLua) assert.is(lua(file, "t.version"), "1");
});

test("tracking: a registration records { invite_id, invite_source }; no source, no invite_source", async () => {
  const [invite] = await srv.invites().createAccount(undefined, { source: "api/token/k1" });
  assert.is((await register("mona", invite!.token)).status, 200);
  const store = await kv(HOST, "invites_tracking");
  assert.equal(await store.get("mona"), { invite_id: invite!.token, invite_source: "api/token/k1" });
  const [bare] = await srv.invites().createAccount();
  assert.is((await register("nina", bare!.token)).status, 200);
  assert.equal(await store.get("nina"), { invite_id: bare!.token });
  if (haveLua) assert.is(lua(dataFile(HOST, "invites_tracking", "mona"), "t.invite_id .. ' ' .. t.invite_source"), `${invite!.token} api/token/k1`);
});

test("tracking: a registration without an invite stores nothing (and leaves an existing record)", async () => {
  const store = await kv(HOST, "invites_tracking");
  await store.set("oscar", { invite_id: "earlier", invite_source: "x" });
  await srv.fire(HOST, "user-registered", { username: "oscar", host: HOST, source: "mod_register" });
  await srv.fire(HOST, "user-registered", { username: "paula", host: HOST, source: "mod_register" });
  assert.equal(await store.get("oscar"), { invite_id: "earlier", invite_source: "x" });
  assert.is(await store.get("paula"), undefined);
});

// --- mod_invites_groups ---

test("groups: membership written where mod_groups_internal keeps it; unknown groups skipped; group-user-added fired", async () => {
  const info = await kv(HOST, "group_info");
  await info.set("default", { name: "Everyone" });
  await info.set("team", { name: "Team", muc_jid: "t1@groups.example.com" });
  const [invite] = await srv.invites().createAccount(undefined, { groups: ["default", "ghost", 7, "team"] });
  assert.is((await register("quinn", invite!.token)).status, 200, "unknown groups never fail the registration");
  const members = await map(HOST, "groups");
  assert.equal(await members.get("default", "quinn"), {});
  assert.equal(await members.get("team", "quinn"), {});
  assert.is(await members.get("ghost", "quinn"), undefined);
  assert.is(await (await kv(HOST, "groups")).get("ghost"), undefined, "no record for a group that does not exist");
  // mod_groups_internal reads the members of a group as the keyval record of the group id.
  assert.equal(Object.keys((await (await kv(HOST, "groups")).get("default"))!), ["quinn"]);
  if (haveLua) {
    const file = dataFile(HOST, "groups", "default");
    assert.is(lua(file, "type(t.quinn) .. ' ' .. tostring(next(t.quinn))"), "table nil", "Lua sees { quinn = {} }");
  }
  const added = srv.events().filter((e) => e.name === "group-user-added" && e.event.user === "quinn");
  assert.equal(added.map((e) => e.event.id), ["default", "team"]);
  assert.equal(added[1]!.event.group_info, { name: "Team", muc_jid: "t1@groups.example.com" });
  assert.is(added[0]!.event.host, HOST);
});

test("groups: a second member joins the same record; an invite without groups touches nothing", async () => {
  const [invite] = await srv.invites().createGroup(["default"], undefined, 3600);
  assert.is((await register("rita", invite!.token)).status, 200);
  assert.equal(Object.keys((await (await kv(HOST, "groups")).get("default"))!).sort(), ["quinn", "rita"]);
  const [plain] = await srv.invites().createAccount();
  assert.is((await register("sam", plain!.token)).status, 200);
  for (const g of ["default", "team"]) assert.is(await (await map(HOST, "groups")).get(g, "sam"), undefined);
});

test("groups: a failure with one group never fails the registration, and the next group is still joined", async () => {
  const info = await kv(HOST, "group_info");
  await info.set("explodes", { name: "Explodes" });
  const [invite] = await srv.invites().createAccount(undefined, { groups: ["explodes", "default"] });
  const r = await register("tess", invite!.token);
  assert.is(r.status, 200);
  assert.equal(await (await map(HOST, "groups")).get("explodes", "tess"), {}, "written before the handler failed");
  assert.equal(await (await map(HOST, "groups")).get("default", "tess"), {}, "the next group is joined");
  const auth = srv.exports<AuthProvider>(HOST, "auth_internal_hashed");
  assert.ok(await auth.userExists("tess"));
});

// --- mod_invites_default_group ---

test("default_group: a roster invite without groups gets { \"default\" } and keeps its source (Snikket's typo dropped it)", async () => {
  const tokens = await map(HOST, "invite_token");
  const [withSource] = await srv.invites().createContact("alice", true, { source: "alice@example.com/phone" });
  assert.equal((await tokens.get(null, withSource!.token) as any).additional_data, { source: "alice@example.com/phone", groups: ["default"] });
  const [bare] = await srv.invites().createContact("alice", true);
  assert.equal((await tokens.get(null, bare!.token) as any).additional_data, { groups: ["default"] });
  const [own] = await srv.invites().createContact("alice", true, { groups: ["team"], source: "s" });
  assert.equal((await tokens.get(null, own!.token) as any).additional_data, { groups: ["team"], source: "s" });
  const [account] = await srv.invites().createAccount(undefined, { source: "s" });
  assert.equal((await tokens.get(null, account!.token) as any).additional_data, { source: "s" });
});

test("default_group: the validated contact invite carries both (what mod_invites_groups and tracking read)", async () => {
  const [invite] = await srv.invites().createContact("alice", true, { source: "alice@plain.example/app" }, undefined);
  const [plainInvite] = await srv.invites("plain.example").createContact("zoe", true, { source: "zoe@plain.example/app" });
  const [validated] = await srv.invites("plain.example").get(plainInvite!.token);
  assert.equal(validated!.additional_data, { source: "zoe@plain.example/app", groups: ["default"] });
  assert.ok(invite);
});

// --- mod_invites_bootstrap ---

test("bootstrap: no query, no token, a wrong or partial secret: 403, nothing made", async () => {
  for (const query of [undefined, "", "x=1", "token=", `token=${SECRET}x`, `token=${SECRET.slice(0, -1)}`, "token=%FF"]) {
    const r = await bootstrap(HOST, query);
    assert.is(r.status, 403, String(query));
    assertTokenHeaders((n) => r.header(n), true, String(query));
  }
  assert.is(await (await kv(HOST, "invites_bootstrap")).get(null), undefined);
});

test("bootstrap: the secret makes one admin invite (roles, default group, source, ttl), 303 to it; a replay 303s to the same link", async () => {
  const first = await bootstrap(HOST, `token=${encodeURIComponent(SECRET)}`);
  assert.is(first.status, 303);
  const location = first.header("location")!;
  const token = /preauth=([\w-]+)/.exec(location)?.[1];
  assert.ok(token, location);
  const info = (await srv.invites().getAccountInviteInfo(token!))[0]!;
  assert.equal(info.additional_data, { roles: { "prosody:admin": true }, groups: ["default"], source: "api/token/bootstrap-1" });
  assert.is(info.expires - info.created_at, 600);
  assert.is(location, info.landing_page ?? info.uri);
  const records = list(await (await kv(HOST, "invites_bootstrap")).get(null));
  assert.is(records.length, 1, JSON.stringify(records));
  assert.is(records[0].index, 1);
  assert.is(records[0].result, location);
  assert.type(records[0].timestamp, "number");
  // A Lua sequence, as Snikket's module reads it: `#list`, `list[#list]`.
  if (haveLua) assert.is(lua(join(srv.dir, "data", "example%2ecom", "invites_bootstrap.dat"), "#t .. ' ' .. t[#t].index .. ' ' .. t[#t].result"), `1 1 ${location}`);

  const again = await bootstrap(HOST, `token=${SECRET}`);
  assert.is(again.status, 303);
  assert.is(again.header("location"), location);
  const made = (await srv.invites().pendingAccountInvites()).filter(([, r]) => r.additional_data?.source === "api/token/bootstrap-1");
  assert.is(made.length, 1, "a replay makes no second invite");
});

test("bootstrap: two requests at once make one invite; a list an earlier version wrote (keys \"1\", \"2\"…) is read and rewritten as a sequence", async () => {
  const host = "next.example";
  const store = await kv(host, "invites_bootstrap");
  await store.set(null, { "1": { index: 1, timestamp: 1, result: "https://earlier.example/" } });
  const [a, b] = await Promise.all([bootstrap(host, `token=${SECRET}`), bootstrap(host, `token=${SECRET}`)]);
  assert.is(a.status, 303);
  assert.is(b.status, 303);
  assert.is(a.header("location"), b.header("location"));
  assert.ok(a.header("location") !== "https://earlier.example/", "index 2 > 1: a new bootstrap");
  assert.equal(list(await store.get(null)).map((r) => r.index), [1, 2]);
  assert.is((await srv.invites(host).pendingAccountInvites()).length, 1);
});

test("bootstrap: a list Snikket's module wrote (a Lua sequence) is replayed", async () => {
  // Written before anything on this host opened the store.
  const file = join(srv.dir, "data", "snikket%2eexample", "invites_bootstrap.dat");
  mkdirSync(join(srv.dir, "data", "snikket%2eexample"), { recursive: true });
  writeFileSync(file, 'return {\n\t{ ["index"] = 1; ["result"] = "https://snikket.example/invite/abc/"; ["timestamp"] = 1700000000; };\n};\n');
  const r = await bootstrap("snikket.example", `token=${SECRET}`);
  assert.is(r.status, 303);
  assert.is(r.header("location"), "https://snikket.example/invite/abc/");
  assert.is((await srv.invites("snikket.example").pendingAccountInvites()).length, 0);
});

test("bootstrap: a last entry that is not a bootstrap record: 410, no new admin invite", async () => {
  const store = await kv("old.example", "invites_bootstrap");
  await store.set(null, { "1": "garbage" });
  assert.is((await bootstrap("old.example", `token=${SECRET}`)).status, 410);
  assert.is((await srv.invites("old.example").pendingAccountInvites()).length, 0);
});

test("bootstrap: an older index than the last bootstrap: 410", async () => {
  const store = await kv("old.example", "invites_bootstrap");
  await store.set(null, { "1": { index: 3, timestamp: 1, result: "https://x.example/" } });
  assert.is((await bootstrap("old.example", `token=${SECRET}`)).status, 410);
  assert.is((await srv.invites("old.example").pendingAccountInvites()).length, 0);
});

test("bootstrap: index unset: 404 with or without records (Snikket: a Lua error); secret still checked first", async () => {
  const host = "unset.example";
  assert.is((await bootstrap(host, `token=${SECRET}`)).status, 404);
  await (await kv(host, "invites_bootstrap")).set(null, { "1": { index: 1, timestamp: 1, result: "https://x.example/" } });
  assert.is((await bootstrap(host, `token=${SECRET}`)).status, 404);
  assert.is((await bootstrap(host, "token=wrong")).status, 403);
  assert.is((await bootstrap(host)).status, 403);
  assert.is((await srv.invites(host).pendingAccountInvites()).length, 0);
});

test("bootstrap: an index given as a string of digits is that number (get_option_number), as for Prosody", async () => {
  const r = await bootstrap("string.example", `token=${SECRET}`);
  assert.is(r.status, 303);
  const [[, invite]] = await srv.invites("string.example").pendingAccountInvites() as any;
  assert.is(invite.additional_data.source, "api/token/bootstrap-7");
});

test("bootstrap: without a secret the module serves nothing", async () => {
  assert.is((await bootstrap("nosecret.example", "token=")).status, 404);
  assert.is((await bootstrap("nosecret.example", "token=undefined")).status, 404);
});

test("bootstrap → register_api → tracking and groups: the first admin", async () => {
  const location = (await bootstrap(HOST, `token=${SECRET}`)).header("location");
  const token = /preauth=([\w-]+)/.exec(location ?? "")?.[1];
  assert.ok(token, String(location));
  if (!token) return;
  const info = jsonOf(await srv.request("GET", `/register_api/invite/${token}`));
  assert.is(info.type, "register");
  assert.is((await register("admin", token)).status, 200);
  assert.equal(await (await kv(HOST, "roles")).get("admin"), { "prosody:admin": true });
  assert.equal(await (await kv(HOST, "invites_tracking")).get("admin"), { invite_id: token, invite_source: "api/token/bootstrap-1" });
  assert.equal(await (await map(HOST, "groups")).get("default", "admin"), {});
  const auth = srv.exports<AuthProvider>(HOST, "auth_internal_hashed");
  assert.ok(await auth.userExists("admin"));
});

test("the data files written above load in Lua as Prosody loads them", (ctx) => {
  if (!haveLua) return skip(ctx, "lua5.4 not installed (the Lua checks in the tests above did not run either)");
  assert.is(lua(dataFile(HOST, "groups", "default"), "type(t.admin)"), "table");
  assert.is(lua(dataFile(HOST, "invites_tracking", "admin"), "t.invite_source"), "api/token/bootstrap-1");
});

test.run();
