/** mod_invites' API against Prosody 0.12's record format and semantics (memory storage). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRuntime } from "../../src/create-runtime.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { makeConfig } from "../helpers/config.js";

async function setup(options: Record<string, any> = {}) {
  const rt = createRuntime({
    config: makeConfig({ storage: "memory", ...options }, { "example.com": {} }),
    processType: "server",
  });
  const mod = await rt.modules.load("example.com", "invites");
  const api = mod.exports as InvitesApi;
  const map = await rt.storage.open("example.com", "invite_token", "map");
  return { rt, mod, api, map };
}

const TOKEN = /^[A-Za-z0-9_-]{24}$/;
const nowS = () => Math.floor(Date.now() / 1000);

test("createAccount stores Prosody's exact record (host-wide entry keyed by token)", async () => {
  const { api, map } = await setup();
  const [invite] = await api.createAccount(undefined, { groups: [] });
  assert.ok(invite);
  assert.match(invite!.token, TOKEN);
  const stored = await map.get(null, invite!.token);
  assert.equal(Object.keys(stored as object).sort(), [
    "additional_data",
    "allow_registration",
    "created_at",
    "expires",
    "jid",
    "token",
    "type",
    "uri",
  ]);
  assert.equal(stored, {
    type: "register",
    jid: "example.com",
    token: invite!.token,
    allow_registration: true,
    additional_data: { groups: [] },
    uri: `xmpp:example.com?register;preauth=${invite!.token}`,
    created_at: invite!.created_at,
    expires: invite!.created_at + 604800,
  });
  assert.ok(Math.abs(invite!.created_at - nowS()) <= 1);
});

test("invite_expiry sets the default TTL; an explicit ttl wins; no additional_data → no field", async () => {
  const { api, map } = await setup({ invite_expiry: 3600 });
  const [a] = await api.createAccount();
  assert.is(a!.expires - a!.created_at, 3600);
  assert.not.ok("additional_data" in (await map.get(null, a!.token) as object));
  const [b] = await api.createAccount("bob", undefined, 60);
  assert.is(b!.expires - b!.created_at, 60);
  assert.is(b!.jid, "bob@example.com");
  assert.is(b!.uri, `xmpp:bob@example.com?register;preauth=${b!.token}`);
});

test("createAccountReset: username-bound, allow_reset, 1 day", async () => {
  const { api } = await setup();
  const [r] = await api.createAccountReset("alice");
  assert.is(r!.jid, "alice@example.com");
  assert.equal(r!.additional_data, { allow_reset: "alice" });
  assert.is(r!.expires - r!.created_at, 86400);
  assert.is(r!.uri, `xmpp:alice@example.com?register;preauth=${r!.token}`);
});

test("createContact: per-inviter entry always, host-wide entry only when registration is allowed", async () => {
  const { api, map } = await setup();
  const [c] = await api.createContact("alice", true);
  assert.is(c!.type, "roster");
  assert.is(c!.uri, `xmpp:alice@example.com?roster;preauth=${c!.token};ibr=y`);
  assert.is(await map.get("alice", c!.token), c!.expires);
  assert.is(((await map.get(null, c!.token)) as any).jid, "alice@example.com");
  const [only] = await api.createContact("alice", false);
  assert.is(only!.uri, `xmpp:alice@example.com?roster;preauth=${only!.token}`);
  assert.is(await map.get(null, only!.token), undefined);
  assert.is(await map.get("alice", only!.token), only!.expires);
  // get() on a contact-only token with the inviter's username (XEP-0379 path) works; without, it is invalid
  const [v] = await api.get(only!.token, "alice");
  assert.is(v!.type, "roster");
  assert.is(v!.reusable, false);
  assert.is(v!.uri, `xmpp:alice@example.com?roster;preauth=${only!.token}`);
  assert.equal(await api.get(only!.token), [undefined, "token-invalid"]);
});

test("createGroup: groups merged with additional data; reusable only with a ttl", async () => {
  const { api } = await setup();
  const [g] = await api.createGroup(["g1"], { source: "x" });
  assert.equal(g!.additional_data, { groups: ["g1"], source: "x" });
  assert.not.ok("reusable" in g!);
  const [r] = await api.createGroup(["g2"], undefined, 100);
  assert.is(r!.reusable, true);
  const [v] = await api.get(r!.token);
  assert.ok(await v!.use());
  const [again] = await api.get(r!.token);
  assert.ok(again, "a reusable invite survives use()");
});

test("invite-created fires before storing, and handler changes are persisted", async () => {
  const { api, mod, map } = await setup();
  const seen: string[] = [];
  mod.hook("invite-created", (invite: any) => {
    seen.push(invite.token);
    invite.landing_page = `https://x/${invite.token}`;
  });
  const [i] = await api.createAccount();
  assert.equal(seen, [i!.token]);
  assert.is(((await map.get(null, i!.token)) as any).landing_page, `https://x/${i!.token}`);
});

test("get: validated invite fields; roster invites expose the inviter; use() consumes", async () => {
  const { api, map } = await setup();
  const [i] = await api.createAccount(undefined, { source: "t" });
  const [v, err] = await api.get(i!.token);
  assert.is(err, undefined);
  assert.equal(
    { token: v!.token, type: v!.type, uri: v!.uri, additional_data: v!.additional_data, reusable: v!.reusable, username: v!.username },
    { token: i!.token, type: "register", uri: i!.uri, additional_data: { source: "t" }, reusable: false, username: undefined },
  );
  assert.ok(await v!.use());
  assert.is(await map.get(null, i!.token), undefined);
  assert.equal(await api.get(i!.token), [undefined, "token-invalid"]);
  const [c] = await api.createContact("carol", true);
  const [cv] = await api.get(c!.token);
  assert.is(cv!.username, "carol");
  assert.is(cv!.inviter, "carol");
  await cv!.use();
  assert.is(await map.get("carol", c!.token), undefined, "per-inviter entry removed too");
  assert.is(await map.get(null, c!.token), undefined);
});

test("claim: takes a single-use invite once (other holders of it get false); unclaim puts every entry back", async () => {
  const { api, map } = await setup();
  const [c] = await api.createContact("alice", true);
  const [a] = await api.get(c!.token);
  const [b] = await api.get(c!.token);
  // Two claims of one object share the attempt; a second object that validated the same invite loses.
  assert.equal(await Promise.all([a!.claim(), a!.claim()]), [true, true]);
  assert.is(await b!.claim(), false);
  assert.is(await b!.use(), false, "use() of an invite claimed by another is a failure, not a success");
  assert.is(await a!.use(), true, "use() after the own claim is a no-op success");
  assert.is(await map.get(null, c!.token), undefined);
  assert.is(await map.get("alice", c!.token), undefined);
  await a!.unclaim();
  assert.equal(await map.get(null, c!.token), c);
  assert.is(await map.get("alice", c!.token), c!.expires);
  const [again] = await api.get(c!.token);
  assert.is(await again!.claim(), true, "an unclaimed invite is valid again");
});

test("claim: a reusable invite is never consumed, and is claimable while it exists", async () => {
  const { api, map } = await setup();
  const [g] = await api.createGroup(["team"], undefined, 3600);
  const [v] = await api.get(g!.token);
  assert.is(await v!.claim(), true);
  assert.is(await v!.claim(), true);
  assert.ok(await map.get(null, g!.token));
  await api.deleteAccountInvite(g!.token);
  assert.is(await v!.claim(), false, "deleted meanwhile");
});

test("get: validated invites say whom a reset or username-bound invite is for", async () => {
  const { api } = await setup();
  const [r] = await api.createAccountReset("alice");
  const [rv] = await api.get(r!.token);
  assert.is(rv!.resetUsername, "alice");
  assert.is(rv!.boundUsername, "alice");
  assert.is(rv!.jid, "alice@example.com");
  const [b] = await api.createAccount("Bob");
  const [bv] = await api.get(b!.token);
  assert.is(bv!.boundUsername, "bob");
  assert.is(bv!.resetUsername, undefined);
  const [open] = await api.createAccount();
  const [ov] = await api.get(open!.token);
  assert.equal([ov!.boundUsername, ov!.resetUsername], [undefined, undefined]);
});

test("get: no token, unknown token, expired token (now > expires)", async () => {
  const { api, map } = await setup();
  assert.equal(await api.get(""), [undefined, "no-token"]);
  assert.equal(await api.get("nope"), [undefined, "token-invalid"]);
  const [i] = await api.createAccount();
  await map.set(null, i!.token, { ...(i as any), expires: nowS() - 1 });
  assert.equal(await api.get(i!.token), [undefined, "token-expired"]);
  assert.equal(await api.getAccountInviteInfo(i!.token), [undefined, "token-expired"]);
  const [j] = await api.createAccount();
  await map.set(null, j!.token, { ...(j as any), expires: nowS() + 5 });
  assert.ok((await api.get(j!.token))[0], "still valid until expires has passed");
});

test("pendingAccountInvites lists unexpired host-wide invites; delete removes one", async () => {
  const { api, map } = await setup();
  const [a] = await api.createAccount();
  const [b] = await api.createAccount();
  const [old] = await api.createAccount();
  await map.set(null, old!.token, { ...(old as any), expires: nowS() - 10 });
  const pending = (await api.pendingAccountInvites()).map(([t]) => t).sort();
  assert.equal(pending, [a!.token, b!.token].sort());
  assert.equal(await api.deleteAccountInvite(a!.token), [true, undefined]);
  assert.equal(await api.getAccountInviteInfo(a!.token), [undefined, "token-invalid"]);
  assert.equal((await api.getAccountInviteInfo(b!.token))[0]!.token, b!.token);
});

test("purgeExpired removes expired entries only, host-wide and per inviter", async () => {
  const { api, map } = await setup();
  const [live] = await api.createAccount();
  const [dead] = await api.createAccount();
  const [c] = await api.createContact("dave", false);
  const [cLive] = await api.createContact("dave", false);
  await map.set(null, dead!.token, { ...(dead as any), expires: nowS() - 1 });
  await map.set("dave", c!.token, nowS() - 100);
  assert.is(await api.purgeExpired(), 2);
  assert.ok(await map.get(null, live!.token));
  assert.is(await map.get(null, dead!.token), undefined);
  assert.is(await map.get("dave", c!.token), undefined);
  assert.is(await map.get("dave", cLive!.token), cLive!.expires);
  assert.is(await api.purgeExpired(), 0);
});

test("prosodyctl mod_invites show HOST TOKEN prints a valid invite, or the reason it is not", async () => {
  const { main } = await import("../../src/cli/prosodyctl.js");
  const { tempConfig } = await import("../helpers/cli.js");
  const { dir, config } = tempConfig(`data_path = "$DIR/data"\nstorage = "sql"\nVirtualHost "example.com"\n`);
  let out = "";
  const io = { stdout: (t: string) => void (out += t), stderr: () => undefined, cwd: dir, env: {} };
  assert.is(await main(["--config", config, "mod_invites", "generate", "example.com"], io), 0);
  const token = out.trim().split("preauth=")[1]!;
  out = "";
  assert.is(await main(["--config", config, "mod_invites", "show", "example.com", token], io), 0);
  assert.is(JSON.parse(out).token, token);
  out = "";
  assert.is(await main(["--config", config, "mod_invites", "show", "example.com", "nope"], io), 1);
  assert.is(out, "Error: token-invalid\n");
  out = "";
  assert.is(await main(["--config", config, "mod_invites", "show", "example.com"], io), 2);
});

test.run();
