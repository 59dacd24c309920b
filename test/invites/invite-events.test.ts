/**
 * The invite events other modules (metrics, webhooks) hook: "invite-stored" once the invite is in
 * the store (awaited), "invite-used" when a registration or a password reset consumes one,
 * "invite-expired" per invite the purge removes.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { createRuntime } from "../../src/create-runtime.js";
import { makeConfig } from "../helpers/config.js";

async function setup() {
  const rt = createRuntime({ config: makeConfig({ storage: "memory" }, { "example.com": {} }), processType: "server" });
  const invites = (await rt.modules.load("example.com", "invites")).exports as InvitesApi;
  const register = await rt.modules.load("example.com", "invites_register");
  const map = await rt.storage.open("example.com", "invite_token", "map");
  const seen: Array<[string, any]> = [];
  for (const name of ["invite-stored", "invite-used", "invite-expired"]) register.hook(name, (e: unknown) => void seen.push([name, e]));
  return { rt, invites, register, map, seen };
}

test("invite-stored: fired once the invite is stored, and awaited by the creator", async () => {
  const { invites, register, map, seen } = await setup();
  let stored: unknown;
  let finished = false;
  register.hook("invite-stored", async (invite: { token: string }) => {
    stored = await map.get(null, invite.token);
    await new Promise((r) => setTimeout(r, 20));
    finished = true;
  });
  const [invite] = await invites.createAccount(undefined, { source: "cli" });
  assert.ok(finished, "createAccount resolved only after the async handler finished");
  assert.is((stored as { token: string }).token, invite!.token, "the record was in the store when the event fired");
  assert.equal(seen.map(([n, e]) => [n, e.token]), [["invite-stored", invite!.token]]);
});

test("invite-used: on user-registered and on user-password-reset, with the username; not when the invite was used meanwhile", async () => {
  const { invites, register, seen } = await setup();
  const [a] = await invites.createAccount();
  const [validA] = await invites.get(a!.token);
  await register.fireEventAsync("user-registered", { username: "ann", host: "example.com", validated_invite: validA });
  const [r] = await invites.createAccountReset("bob");
  const [validR] = await invites.get(r!.token);
  await register.fireEventAsync("user-password-reset", { username: "bob", host: "example.com", validated_invite: validR });
  const used = seen.filter(([n]) => n === "invite-used").map(([, e]) => [e.invite.token, e.username, e.host]);
  assert.equal(used, [
    [a!.token, "ann", "example.com"],
    [r!.token, "bob", "example.com"],
  ]);
  // Consumed by another registration meanwhile: that registration is undone, and nothing is fired.
  const [c] = await invites.createAccount();
  const [first] = await invites.get(c!.token);
  const [second] = await invites.get(c!.token);
  assert.ok(await first!.claim());
  const undone = await register.fireEventAsync("user-registered", { username: "late", host: "example.com", validated_invite: second }).then(
    () => false,
    () => true,
  );
  assert.ok(undone, "the registration with an invite already used is refused");
  assert.is(seen.filter(([n]) => n === "invite-used").length, 2);
});

test("invite-expired: one per purged invite (host-wide records and contact-only entries)", async () => {
  const { invites, seen } = await setup();
  const [old] = await invites.createAccount(undefined, { source: "api/token/x" }, -5);
  const [contact] = await invites.createContact("carol", false, undefined, -5);
  await invites.createAccount(); // still valid
  assert.is(await invites.purgeExpired(), 2);
  const expired = seen.filter(([n]) => n === "invite-expired").map(([, e]) => [e.token, e.type]);
  assert.equal(expired, [
    [old!.token, "register"],
    [contact!.token, "roster"],
  ]);
});

test.run();
