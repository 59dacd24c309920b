/**
 * mod_auth_internal_hashed, mod_password_policy and mod_invites_register in-process (memory
 * storage): Prosody's account record, the policy messages, roles and invite consumption.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRuntime } from "../../src/create-runtime.js";
import type { OptionValue } from "../../src/core/types.js";
import { verifyScramPassword } from "../../src/util/scram.js";
import type { AuthProvider } from "../../plugins/mod_auth_internal_hashed/mod_auth_internal_hashed.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import type { PasswordPolicyApi } from "../../plugins/mod_password_policy/mod_password_policy.js";
import { makeConfig } from "../helpers/config.js";
import { captureLogs } from "../helpers/logs.js";
import { recordOf } from "../helpers/records.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function runtime(global: Record<string, OptionValue> = {}, host: Record<string, OptionValue> = {}) {
  const rt = createRuntime({ config: makeConfig({ storage: "memory", ...global }, { "example.com": host }), processType: "server" });
  const auth = (await rt.modules.load("example.com", "auth_internal_hashed")).exports as AuthProvider;
  const accounts = await rt.storage.open("example.com", "accounts", "keyval");
  return { rt, auth, accounts };
}

// --- mod_auth_internal_hashed ---

test("auth: createUser writes exactly Prosody's record and fires no event", async () => {
  const { rt, auth, accounts } = await runtime();
  const fired: string[] = [];
  for (const ev of ["user-registered", "user-created", "user-deleted"]) {
    rt.globalEvents.hook(ev, () => void fired.push(ev));
    rt.eventsFor("example.com").hook(ev, () => void fired.push(ev));
  }
  assert.not.ok(await auth.userExists("alice"));
  assert.equal(await auth.createUser("alice", "correct horse battery"), [true, undefined]);
  const rec = recordOf(await accounts.get("alice"));
  assert.equal(Object.keys(rec).sort(), ["iteration_count", "salt", "server_key", "stored_key"]);
  assert.match(rec.salt as string, UUID);
  assert.is(rec.iteration_count, 10000);
  assert.match(rec.stored_key as string, /^[0-9a-f]{40}$/);
  assert.ok(await verifyScramPassword(rec, "correct horse battery"));
  assert.ok(await auth.userExists("alice"));
  assert.ok(await auth.testPassword("alice", "correct horse battery"));
  assert.not.ok(await auth.testPassword("alice", "wrong password"));
  assert.not.ok(await auth.testPassword("nobody", "correct horse battery"));
  assert.equal(fired, []);
  assert.equal(await auth.users(), ["alice"]);
});

test("auth: usernames must be nodeprepped; a password must be given and pass SASLprep", async () => {
  const { auth } = await runtime();
  assert.equal(await auth.createUser("Alice", "password1"), [undefined, "invalid-username"]);
  assert.equal(await auth.createUser("a b", "password1"), [undefined, "invalid-username"]);
  assert.equal(await auth.createUser("", "password1"), [undefined, "invalid-username"]);
  assert.equal(await auth.createUser("bob", undefined as unknown as string), [undefined, "no-password"]);
  assert.equal(await auth.createUser("bob", "bad\u0007pw"), [undefined, "password fails SASLprep"]);
  assert.not.ok(await auth.userExists("bob"));
  assert.not.ok(await auth.userExists("Alice"));
});

test("auth: setPassword re-salts, keeps other fields, never lowers the iteration count", async () => {
  const { auth, accounts } = await runtime();
  await accounts.set("carol", { salt: "old-salt", stored_key: "0".repeat(40), server_key: "0".repeat(40), iteration_count: 20000, extra: "kept" });
  assert.equal(await auth.setPassword("carol", "new password"), [true, undefined]);
  const rec = recordOf(await accounts.get("carol"));
  assert.is(rec.extra, "kept");
  assert.is(rec.iteration_count, 20000);
  assert.match(rec.salt as string, UUID);
  assert.ok(await auth.testPassword("carol", "new password"));
  assert.equal(await auth.setPassword("nobody", "x"), [undefined, "no-such-user"]);
});

test("auth: deleteUser removes the record and fires the global user-deleted {username, host}", async () => {
  const { rt, auth, accounts } = await runtime();
  await auth.createUser("dave", "password1");
  const events: unknown[] = [];
  rt.globalEvents.hook("user-deleted", (e) => void events.push(e));
  assert.equal(await auth.deleteUser("dave"), [true, undefined]);
  assert.is(await accounts.get("dave"), undefined);
  assert.not.ok(await auth.userExists("dave"));
  assert.equal(events, [{ username: "dave", host: "example.com" }]);
});

test("auth: a legacy plaintext record logs in and is re-hashed on the first success", async () => {
  const { auth, accounts } = await runtime();
  await accounts.set("erin", { password: "secret-pw" });
  assert.ok(await auth.userExists("erin"));
  assert.not.ok(await auth.testPassword("erin", "wrong"));
  assert.equal(await accounts.get("erin"), { password: "secret-pw" }, "a failed attempt changes nothing");
  assert.ok(await auth.testPassword("erin", "secret-pw"));
  const rec = recordOf(await accounts.get("erin"));
  assert.not.ok("password" in rec);
  assert.equal(Object.keys(rec).sort(), ["iteration_count", "salt", "server_key", "stored_key"]);
  assert.ok(await auth.testPassword("erin", "secret-pw"));
});

test("auth: password_hash = SHA-256 and default_iteration_count; provides an auth item", async () => {
  const { rt, auth, accounts } = await runtime({ password_hash: "SHA-256", default_iteration_count: 4096 });
  await auth.createUser("frank", "password1");
  const rec = recordOf(await accounts.get("frank"));
  assert.is(rec.iteration_count, 4096);
  assert.match(rec.stored_key as string, /^[0-9a-f]{64}$/);
  assert.ok(await verifyScramPassword(rec, "password1", "sha256"));
  assert.ok(await auth.testPassword("frank", "password1"));
  const items = rt.modules.hostItems("example.com", "auth-provider") as Array<{ name: string }>;
  assert.equal(items.map((i) => i.name), ["internal_hashed"]);
  const logs = captureLogs();
  try {
    assert.not.ok(await runtime({ password_hash: "MD5" }).then(() => true, () => false), "unknown hash refuses to load");
    assert.ok(logs.messages("error").some((m) => m.includes("SCRAM-MD5 is not supported")));
  } finally {
    logs.restore();
  }
});

// --- mod_password_policy ---

async function policy(options?: OptionValue) {
  const rt = createRuntime({
    config: makeConfig({ storage: "memory", ...(options === undefined ? {} : { password_policy: options }) }, { "example.com": {} }),
    processType: "server",
  });
  return (await rt.modules.load("example.com", "password_policy")).exports as PasswordPolicyApi;
}

test("password_policy: defaults length 8 and exclude_username, golden messages", async () => {
  const p = await policy();
  assert.equal(p.getPolicy(), { length: 8, exclude_username: true });
  assert.is(p.checkPassword("short", { username: "bob" }), "Password is too short (minimum 8 characters)");
  assert.is(p.checkPassword("xxBoBxx12345", { username: "bob" }), "Password must not include your username");
  assert.is(p.checkPassword("goodpassword1", { username: "bob" }), undefined);
  assert.is(p.checkPassword("goodpassword1"), undefined);
  assert.is(p.checkPassword("12345678"), undefined, "exactly the minimum");
  // Issue 11 item 9: bytes, as Prosody's #password counts (this test used to pin characters).
  assert.is(p.checkPassword("ääää"), undefined, "8 bytes");
  assert.is(p.checkPassword("äää"), "Password is too short (minimum 8 characters)", "6 bytes");
  assert.is(p.checkPassword(""), "No password provided");
  // The length check comes first, as in Prosody.
  assert.is(p.checkPassword("bob", { username: "bob" }), "Password is too short (minimum 8 characters)");
});

test("password_policy: options from the config", async () => {
  const p = await policy({ length: 12, exclude_username: false });
  assert.equal(p.getPolicy(), { length: 12, exclude_username: false });
  assert.is(p.checkPassword("abcdefghijk"), "Password is too short (minimum 12 characters)");
  // As in Prosody, exclude_username = false does not turn the username check off (item 9).
  assert.is(p.checkPassword("bob-is-my-name", { username: "bob" }), "Password must not include your username");
  const q = await policy({ exclude_username: false });
  assert.is(q.getPolicy().length, 8);
  const copy = q.getPolicy();
  copy.length = 1;
  assert.is(q.getPolicy().length, 8, "getPolicy returns a copy");
});

// --- mod_invites_register ---

async function withInvites(host: Record<string, OptionValue> = {}) {
  const rt = createRuntime({ config: makeConfig({ storage: "memory" }, { "example.com": host }), processType: "server" });
  const invites = (await rt.modules.load("example.com", "invites")).exports as InvitesApi;
  await rt.modules.load("example.com", "invites_register");
  const bus = rt.eventsFor("example.com");
  const roles = await rt.storage.open("example.com", "roles", "keyval");
  const tokens = await rt.storage.open("example.com", "invite_token", "map");
  /** Fires like a registering module does (fireEventAsync) and so waits for the handlers' work. */
  const fire = async (event: string, data: Record<string, unknown>) => {
    await bus.fireAsync(event, { ...data });
  };
  return { rt, invites, bus, roles, tokens, fire };
}

test("invites_register: user-registered consumes the invite and stores additional_data.roles like roles/erin.dat", async () => {
  const { invites, roles, tokens, fire } = await withInvites();
  const [created] = await invites.createAccount(undefined, { groups: [], roles: { "prosody:admin": true } });
  const [invite] = await invites.get(created!.token);
  await fire("user-registered", { username: "erin", host: "example.com", source: "test", validated_invite: invite });
  assert.equal(await roles.get("erin"), { "prosody:admin": true });
  assert.is(await tokens.get(null, created!.token), undefined, "the invite is consumed");
  assert.equal((await invites.get(created!.token))[1], "token-invalid");
});

test("invites_register: no roles → no roles record; groups ignored; a 13.0-style role array becomes the map", async () => {
  const { invites, roles, fire } = await withInvites();
  const [g] = await invites.createAccount(undefined, { groups: ["g1", "g2"] });
  await fire("user-registered", { username: "frank", host: "example.com", validated_invite: (await invites.get(g!.token))[0] });
  assert.is(await roles.get("frank"), undefined);
  const [a] = await invites.createAccount(undefined, { roles: ["prosody:member", "custom"] });
  await fire("user-registered", { username: "gina", host: "example.com", validated_invite: (await invites.get(a!.token))[0] });
  assert.equal(await roles.get("gina"), { "prosody:member": true, custom: true });
});

test("invites_register: a reusable invite stays, every user gets its roles; the session form is understood", async () => {
  const { invites, roles, tokens, fire } = await withInvites();
  const [g] = await invites.createGroup(["team"], { roles: { "prosody:admin": true } }, 3600);
  for (const user of ["judy", "kate"]) {
    const [invite] = await invites.get(g!.token);
    await fire("user-registered", { username: user, host: "example.com", session: { validated_invite: invite } });
    assert.equal(await roles.get(user), { "prosody:admin": true });
  }
  assert.ok(await tokens.get(null, g!.token), "a reusable invite is not consumed");
});

test("invites_register: user-password-reset consumes the invite; a registration without an invite is left alone", async () => {
  const { invites, tokens, fire } = await withInvites();
  const [r] = await invites.createAccountReset("alice");
  await fire("user-password-reset", { username: "alice", host: "example.com", validated_invite: (await invites.get(r!.token))[0] });
  assert.is(await tokens.get(null, r!.token), undefined);
  await fire("user-registered", { username: "nobody", host: "example.com" });
});

test("invites_register: an account registered elsewhere with an invite already used is removed, and the firing module learns it", async () => {
  // Issue #11: a registration module that creates the account first and fires user-registered
  // (as Prosody's in-band registration does). Two such registrations validated one single-use
  // invite before either consumed it: the second account must not stay.
  const { rt, invites, tokens, bus } = await withInvites();
  const auth = (await rt.modules.load("example.com", "auth_internal_hashed")).exports as AuthProvider;
  const [created] = await invites.createAccount(undefined, { roles: { "prosody:admin": true } });
  const [first] = await invites.get(created!.token);
  const [second] = await invites.get(created!.token);
  const outcomes: PromiseSettledResult<unknown>[] = [];
  for (const [username, invite] of [["ann", first], ["bob", second]] as const) {
    assert.equal(await auth.createUser(username, "secret-pass"), [true, undefined]);
    // The firing module awaits the async dispatch: the handler's rejection reaches it.
    outcomes.push(...(await Promise.allSettled([bus.fireAsync("user-registered", { username, host: "example.com", source: "test", validated_invite: invite })])));
  }
  assert.is(outcomes[0]!.status, "fulfilled");
  assert.is(outcomes[1]!.status, "rejected");
  assert.match(String((outcomes[1] as PromiseRejectedResult).reason), "undone");
  assert.is(await auth.userExists("ann"), true);
  assert.is(await auth.userExists("bob"), false, "the second account was rolled back");
  assert.is(await tokens.get(null, created!.token), undefined);
});

test("invites_register: fired synchronously (as a ported Lua module would), a failed consume still rolls back and leaves no unhandled rejection", async () => {
  const { rt, invites, bus } = await withInvites();
  const auth = (await rt.modules.load("example.com", "auth_internal_hashed")).exports as AuthProvider;
  const [created] = await invites.createAccount();
  const [first] = await invites.get(created!.token);
  const [invite] = await invites.get(created!.token);
  assert.ok(await first!.use(), "used by another registration already");
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);
  process.on("unhandledRejection", onUnhandled);
  const logs = captureLogs();
  try {
    assert.equal(await auth.createUser("sam", "secret-pass"), [true, undefined]);
    bus.fire("user-registered", { username: "sam", host: "example.com", source: "test", validated_invite: invite });
    for (let i = 0; i < 50 && (await auth.userExists("sam")); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 20));
    assert.is(await auth.userExists("sam"), false, "rolled back");
    assert.equal(unhandled, []);
    assert.ok(logs.messages("error").some((m) => m.includes("Handling the invite of sam failed")));
  } finally {
    logs.restore();
    process.off("unhandledRejection", onUnhandled);
  }
});

test("invites_register: user-registering refuses reset invites and bound invites used for another username", async () => {
  const { invites, bus } = await withInvites();
  const registering = (username: string, validated_invite?: unknown): Record<string, unknown> => {
    const event: Record<string, unknown> = { username, host: "example.com", allowed: true, validated_invite };
    bus.fire("user-registering", event);
    return event;
  };
  const [reset] = await invites.createAccountReset("alice");
  const resetInvite = (await invites.get(reset!.token))[0];
  const oscar = registering("oscar", resetInvite);
  assert.is(oscar.allowed, false);
  assert.type(oscar.reason, "string");
  const alice = registering("alice", resetInvite);
  assert.is(alice.allowed, true);
  assert.is(alice.allow_reset, "alice");

  const [bound] = await invites.createAccount("zed");
  const boundInvite = (await invites.get(bound!.token))[0];
  assert.is(registering("mallory", boundInvite).allowed, false);
  assert.is(registering("zed", boundInvite).allowed, true);

  const [open] = await invites.createAccount();
  assert.is(registering("anyone", (await invites.get(open!.token))[0]).allowed, true);
  // A contact invite's jid is the inviter's: it binds nothing.
  const [contact] = await invites.createContact("alice", true);
  assert.is(registering("newbie", (await invites.get(contact!.token))[0]).allowed, true);

  const none = registering("walkin");
  assert.is(none.allowed, false);
  assert.is(none.reason, "Registration on this server is through invitation only");
});

test("invites_register: registration_invite_only = false lets registrations without invites through", async () => {
  const { bus } = await withInvites({ registration_invite_only: false });
  const event: Record<string, unknown> = { username: "walkin", host: "example.com", allowed: true };
  bus.fire("user-registering", event);
  assert.is(event.allowed, true);
});

test.run();
