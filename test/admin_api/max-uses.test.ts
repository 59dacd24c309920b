/**
 * Our extensions that change what an invite registers: `max_uses` (a reusable invite registers
 * at most N accounts, also under concurrent registrations, and a failed one gives its use back)
 * and `expire` (the invite stops registering at once but its record stays, listed as expired).
 * Through the real registration form (mod_invites_register_web) and mod_invites' API.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { startHost, type Host } from "./_harness.js";

let h: Host;
let admin: string;
let invites: InvitesApi;
let seq = 0;

test.before(async () => {
  h = await startHost(["invites_register", "invites_register_web"]);
  admin = await h.key(["admin"]);
  invites = h.rt.modules.get("example.com", "invites")!.exports as InvitesApi;
});
test.after(() => h?.stop());

const create = async (path: string, body: unknown) => {
  const r = await h.req("POST", `/admin_api/invites/${path}`, { key: admin, body: JSON.stringify(body) });
  assert.is(r.status, 200, r.body.toString());
  return r.json();
};

async function register(token: string, user = `user${++seq}`): Promise<{ status: number; ok: boolean; user: string }> {
  const body = new URLSearchParams({ user, password: "a good password 1", token }).toString();
  const r = await h.req("POST", "/register", { body, type: "application/x-www-form-urlencoded" });
  return { status: r.status, ok: r.body.toString().includes("Congratulations!"), user };
}

const show = async (id: string) => (await h.req("GET", `/admin_api/invites/${id}?include_expired=true`, { key: admin })).json();

test("max_uses: N registrations, then refused; uses counts them", async () => {
  const inv = await create("account", { max_uses: 3 });
  assert.is(inv.reusable, true);
  assert.is(inv.max_uses, 3);
  assert.is(inv.uses, 0);
  for (let i = 1; i <= 3; i++) {
    assert.ok((await register(inv.id)).ok, `registration ${i}`);
    assert.is((await show(inv.id)).uses, i);
  }
  const fourth = await register(inv.id);
  assert.not.ok(fourth.ok);
  assert.is(fourth.status, 409);
  const auth = h.rt.modules.get("example.com", "auth_internal_hashed")!.exports as { userExists(u: string): Promise<boolean> };
  assert.not.ok(await auth.userExists(fourth.user), "no account for the refused registration");
});

test("max_uses: concurrent registrations never exceed it", async () => {
  const inv = await create("group", { groups: ["crowd"], max_uses: 4 });
  const results = await Promise.all(Array.from({ length: 12 }, () => register(inv.id)));
  assert.is(results.filter((r) => r.ok).length, 4, JSON.stringify(results.map((r) => r.status)));
  assert.ok(results.filter((r) => !r.ok).every((r) => r.status === 409));
  assert.is((await show(inv.id)).uses, 4);
});

test("max_uses: a registration that fails after the claim gives its use back", async () => {
  const inv = await create("account", { max_uses: 2 });
  assert.ok((await register(inv.id, "taken1")).ok);
  const again = await register(inv.id, "taken1"); // username in use: fails after claiming
  assert.not.ok(again.ok);
  assert.is((await show(inv.id)).uses, 1);
  assert.ok((await register(inv.id)).ok, "the second use is still there");
  assert.not.ok((await register(inv.id)).ok);
});

test("max_uses through mod_invites' API: use() counts (the path of in-band registration), claim/unclaim balance", async () => {
  const inv = await create("account", { max_uses: 2 });
  const [a] = await invites.get(inv.id);
  assert.ok(await a!.use());
  const [b] = await invites.get(inv.id);
  assert.ok(await b!.claim());
  await b!.unclaim();
  assert.is((await show(inv.id)).uses, 1);
  const [c] = await invites.get(inv.id);
  assert.ok(await c!.use());
  const [d] = await invites.get(inv.id);
  assert.not.ok(await d!.use(), "the third use is refused");
  // An invite without max_uses is untouched: reusable, never counted.
  const open = await create("group", { groups: ["g"], ttl: 600 });
  for (let i = 0; i < 3; i++) assert.ok(await (await invites.get(open.id))[0]!.use());
  assert.is((await show(open.id)).uses, 0);
});

test("max_uses: an invite expired between validation and claim is not claimed", async () => {
  const inv = await create("account", { max_uses: 5 });
  const [validated] = await invites.get(inv.id);
  assert.is((await h.req("POST", `/admin_api/invites/${inv.id}/expire`, { key: admin })).status, 200);
  assert.not.ok(await validated!.claim());
  assert.is((await show(inv.id)).uses, 0);
});

test("max_uses with a username is refused (one account per username)", async () => {
  const r = await h.req("POST", "/admin_api/invites/account", { key: admin, body: JSON.stringify({ username: "solo", max_uses: 2 }) });
  assert.is(r.status, 400);
  assert.is(r.json().field, "max_uses");
});

test("expire: the invite no longer registers, its record stays (listed as expired, revoked_at); twice is 409", async () => {
  const inv = await create("account", {});
  const r = await h.req("POST", `/admin_api/invites/${inv.id}/expire`, { key: admin });
  assert.is(r.status, 200);
  const expired = r.json();
  assert.is(expired.expired, true);
  assert.type(expired.revoked_at, "number");
  assert.ok(expired.expires < Math.floor(Date.now() / 1000) + 1);
  const reg = await register(inv.id);
  assert.not.ok(reg.ok, "an expired invite does not register");
  assert.equal((await invites.get(inv.id))[1], "token-expired");
  assert.is((await h.req("GET", `/admin_api/invites/${inv.id}`, { key: admin })).status, 404);
  assert.is((await show(inv.id)).id, inv.id, "the record is kept");
  const listed = (await h.req("GET", "/admin_api/invites?include_expired=true", { key: admin })).json();
  assert.ok(listed.some((i: any) => i.id === inv.id && i.expired && i.revoked_at !== null));
  const twice = await h.req("POST", `/admin_api/invites/${inv.id}/expire`, { key: admin });
  assert.is(twice.status, 409);
  assert.is(twice.json().error, "conflict");
  assert.is((await h.req("POST", "/admin_api/invites/nope/expire", { key: admin })).status, 404);
  // mod_invites' purge keeps an expired-on-purpose record (for 30 days), drops other expired ones.
  const plain = await create("account", {});
  const store = await h.rt.storage.open("example.com", "invite_token", "map");
  const rec = (await store.get(null, plain.id)) as any;
  await store.set(null, plain.id, { ...rec, expires: 1 });
  await invites.purgeExpired();
  assert.is(await store.get(null, plain.id), undefined, "an expired invite is purged");
  assert.ok(await store.get(null, inv.id), "the expired-on-purpose one is kept");
});

test("expire of a contact invite also ends it for subscriptions (the inviter's entry)", async () => {
  const [inv] = await invites.createContact("alice", true);
  const r = await h.req("POST", `/admin_api/invites/${inv!.token}/expire`, { key: admin });
  assert.is(r.status, 200);
  assert.equal((await invites.get(inv!.token, "alice"))[1], "token-expired");
  assert.equal((await invites.get(inv!.token))[1], "token-expired");
});

test.run();
