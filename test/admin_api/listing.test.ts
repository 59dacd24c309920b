/**
 * Listing extensions of GET /admin_api/invites: filters (type, created_by), cursor pages in a
 * stable order (created_at, then id) that neither repeat nor skip an invite while others are
 * created concurrently, and the read side of mod_invites_tracking (GET /users/{u}/invited_by).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { startHost, type Host } from "./_harness.js";

let h: Host;
let admin: string;
let invites: InvitesApi;

test.before(async () => {
  h = await startHost();
  admin = await h.key(["admin"]);
  invites = h.rt.modules.get("example.com", "invites")!.exports as InvitesApi;
});
test.after(() => h?.stop());

const get = (path: string, key = admin) => h.req("GET", path, { key });
const nextOf = (link: string | undefined) => (link ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined);

test("cursor pages: every invite present at the start exactly once, in order, while others are created", async () => {
  const before: string[] = [];
  for (let i = 0; i < 40; i++) before.push((await invites.createAccount(undefined, { source: "seed" }))[0]!.token);
  // Spread created_at over several seconds so both sort keys matter.
  const store = await h.rt.storage.open("example.com", "invite_token", "map");
  const base = Math.floor(Date.now() / 1000) - 100;
  for (const [i, t] of before.entries()) {
    const rec = (await store.get(null, t)) as any;
    await store.set(null, t, { ...rec, created_at: base + (i % 5) });
  }
  const seen: any[] = [];
  let url: string | undefined = "/admin_api/invites?limit=7";
  let pages = 0;
  let creating = 0;
  while (url) {
    const r = await get(url);
    assert.is(r.status, 200);
    const page = r.json();
    assert.ok(page.length <= 7);
    seen.push(...page);
    url = nextOf(r.header("link"));
    pages++;
    // Concurrent creates between and during page fetches.
    await Promise.all([invites.createAccount(undefined, { source: "during" }), invites.createAccount(undefined, { source: "during" })]);
    creating += 2;
    assert.ok(pages < 50, "pagination ends");
  }
  const ids = seen.map((i) => i.id);
  assert.is(new Set(ids).size, ids.length, "no invite twice");
  for (const t of before) assert.ok(ids.includes(t), "no invite present at the start is skipped");
  for (let i = 1; i < seen.length; i++) {
    const a = seen[i - 1];
    const b = seen[i];
    assert.ok(a.created_at < b.created_at || (a.created_at === b.created_at && a.id < b.id), "strictly ordered by (created_at, id)");
  }
  assert.ok(creating > 0);
});

test("without limit or cursor, every invite in one array (Snikket's shape), no Link", async () => {
  const r = await get("/admin_api/invites");
  assert.is(r.header("link"), undefined);
  const all = r.json();
  assert.ok(all.length >= 40);
  const limited = await get("/admin_api/invites?limit=1000");
  assert.is(limited.json().length, Math.min(all.length, 1000));
});

test("filters: created_by (key id or exact source) and type, kept in the next link", async () => {
  const k1 = await h.key(["create", "read"]);
  const k2 = await h.key(["create"]);
  const mine: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await h.req("POST", "/admin_api/invites/account", { key: k1, body: "{}" });
    mine.push(r.json().id);
  }
  await h.req("POST", "/admin_api/invites/account", { key: k2, body: "{}" });
  const viaInvitesApi = await h.req("POST", "/invites_api", { key: k1 });
  assert.is(viaInvitesApi.status, 201);
  const id1 = k1.split("/")[0]!;
  const byKey = (await get(`/admin_api/invites?created_by=${id1}`)).json();
  assert.is(byKey.length, 4, "three from the admin API and one from mod_invites_api");
  assert.ok(byKey.every((i: any) => i.source === `api/token/${id1}/admin_api` || i.source === `api/token/${id1}`));
  const bySource = (await get(`/admin_api/invites?created_by=${encodeURIComponent(`api/token/${id1}/admin_api`)}`)).json();
  assert.equal(bySource.map((i: any) => i.id).sort(), [...mine].sort());
  const first = await get(`/admin_api/invites?created_by=${id1}&limit=2`);
  assert.is(first.json().length, 2);
  const next = nextOf(first.header("link"))!;
  assert.match(next, `created_by=${id1}`);
  assert.is((await get(next)).json().length, 2);
  await invites.createContact("alice", true);
  const roster = (await get("/admin_api/invites?type=roster")).json();
  assert.ok(roster.length >= 1 && roster.every((i: any) => i.type === "roster"));
  assert.ok((await get("/admin_api/invites?type=register")).json().every((i: any) => i.type === "register"));
});

test("a bad cursor is 400 naming it", async () => {
  for (const c of ["garbage", Buffer.from('["x",1]').toString("base64url"), "%FF"]) {
    const r = await get(`/admin_api/invites?cursor=${c}`);
    assert.is(r.status, 400, c);
    assert.is(r.json().field, "cursor");
  }
});

test("invited_by: the chain of inviters from mod_invites_tracking's records, bounded, loop-safe", async () => {
  const tracking = await h.rt.storage.open("example.com", "invites_tracking", "keyval");
  await tracking.set(" ", { version: "1" });
  await tracking.set("alice", { invite_id: "t1", invite_source: "api/token/k1" });
  await tracking.set("bob", { invite_id: "t2", invite_source: "alice@example.com" });
  await tracking.set("carol", { invite_id: "t3", invite_source: "Bob@example.com/admin_api" });
  const r = await get("/admin_api/users/carol/invited_by");
  assert.is(r.status, 200);
  assert.equal(r.json(), [
    { user: "carol", invite_id: "t3", source: "Bob@example.com/admin_api", inviter: "bob" },
    { user: "bob", invite_id: "t2", source: "alice@example.com", inviter: "alice" },
    { user: "alice", invite_id: "t1", source: "api/token/k1", inviter: null },
  ]);
  await tracking.set("x", { invite_id: "tx", invite_source: "y@example.com" });
  await tracking.set("y", { invite_id: "ty", invite_source: "x@example.com" });
  assert.equal((await get("/admin_api/users/x/invited_by")).json().map((l: any) => l.user), ["x", "y"]);
  await tracking.set("far", { invite_id: "tf", invite_source: "someone@other.example" });
  assert.equal((await get("/admin_api/users/far/invited_by")).json()[0].inviter, null);
  for (let i = 0; i < 30; i++) await tracking.set(`c${i}`, { invite_id: `tc${i}`, invite_source: `c${i + 1}@example.com` });
  assert.is((await get("/admin_api/users/c0/invited_by")).json().length, 20);
  assert.is((await get("/admin_api/users/nobody/invited_by")).status, 404);
  const bad = await get("/admin_api/users/%20/invited_by");
  assert.is(bad.status, 400);
  assert.is(bad.json().field, "username");
});

test.run();
