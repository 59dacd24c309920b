/**
 * mod_invites_webhooks in one process: config errors, signed deliveries of the three events,
 * retries after 500s (backoff), no redirects followed, and two instances on one database
 * delivering each event once.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { retryDelayS } from "../../plugins/mod_invites_webhooks/config.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { createRuntime } from "../../src/create-runtime.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import type { Config } from "../../src/core/config/index.js";
import { applyConfig } from "../../src/core/reload.js";
import { captureLogs } from "../helpers/logs.js";
import { makeConfig } from "../helpers/config.js";
import { startReceiver, type Receiver } from "../helpers/webhook-receiver.js";
import { recordOf } from "../helpers/records.js";

const SECRET = "a-secret-of-enough-length";
const ALL = ["invite-created", "invite-used", "user-registered"];

setLogLevel("error");

function configOf(options: Record<string, any>, dataDir: string): Config {
  return makeConfig(
    {
      data_path: dataDir,
      storage: "sql",
      invites_webhooks_retry_base: 0.05,
      invites_webhooks_poll: 0.1,
      invites_webhooks_timeout: 2,
      ...options,
    },
    { "example.com": { modules_enabled: ["invites", "invites_register", "invites_webhooks"] } },
  );
}

async function runtime(options: Record<string, any>, dataDir?: string): Promise<Runtime> {
  const rt = createRuntime({ config: configOf(options, dataDir ?? mkdtempSync(join(tmpdir(), "webhooks-"))), processType: "server" });
  await rt.start();
  return rt;
}

const invitesOf = (rt: Runtime) => rt.modules.get("example.com", "invites")!.exports as InvitesApi;

test("config mistakes stop the module with a message naming them", async () => {
  const cases: Array<[unknown, RegExp]> = [
    [[{ url: "http://127.0.0.1:1/", events: ["invite-created", "invite-deleted"], secret: SECRET }], /invites_webhooks\[1\]\.events: unknown event "invite-deleted" \(known: invite-created, invite-used, user-registered\)/],
    [[{ url: "ftp://example.net/", events: ["invite-used"], secret: SECRET }], /only http and https URLs are allowed, not ftp:/],
    [[{ url: "not a url", events: ["invite-used"], secret: SECRET }], /is not a URL/],
    [[{ url: "http://example.net/", events: [], secret: SECRET }], /must list at least one of/],
    [[{ url: "http://example.net/", events: ["invite-used"] }], /secret must be a string of at least 16 characters/],
    [[{ url: "http://example.net/", events: ["invite-used"], secret: SECRET, retries: 3 }], /unknown field "retries"/],
    ["http://example.net/", /must be a list of/],
  ];
  for (const [value, message] of cases) {
    const rt = createRuntime({ config: makeConfig({ storage: "memory", invites_webhooks: value as any }, { "example.com": {} }), processType: "server" });
    try {
      await rt.modules.load("example.com", "invites_webhooks");
      assert.unreachable(`accepted ${JSON.stringify(value)}`);
    } catch (err) {
      assert.instance(err, Error);
      assert.match(String((err as Error).message) + String((err as any).cause?.message ?? ""), message);
    }
  }
});

test("retry delays: exponential from the base, capped, with jitter inside [ceiling/2, ceiling]", () => {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const s = { retryBaseS: 10, retryMaxS: 300 };
  for (const [attempt, ceiling] of [[1, 10], [2, 20], [3, 40], [5, 160], [6, 300], [60, 300]] as const) {
    for (let i = 0; i < 20; i++) {
      const d = retryDelayS(s, attempt, random);
      assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${attempt}: ${d}`);
    }
  }
});

let receiver: Receiver;
test.before(async () => {
  receiver = await startReceiver(SECRET);
});
test.after(async () => {
  await receiver.close();
});

test("signed deliveries of invite-created, invite-used, user-registered; retried after 500s with the same id", async () => {
  receiver.deliveries.length = 0;
  const failedOnce = new Set<string>();
  // The first attempt of every event gets a 500, the second a 204.
  receiver.answer = (d) => (failedOnce.has(d.id) ? 204 : (failedOnce.add(d.id), 500));
  const rt = await runtime({ invites_webhooks: [{ url: receiver.url, events: ALL, secret: SECRET }] });
  try {
    const invites = invitesOf(rt);
    const outbox = await rt.storage.open("example.com", "invites_webhooks_outbox", "keyval");
    const [invite] = await invites.createAccount(undefined, { source: "api/token/k1" });
    // The outbox entry is written before createAccount resolves (durable before the answer).
    assert.is((await outbox.users()).length, 1, "the event is in the outbox when the invite is returned");
    // A registration as mod_invites_register_web does it: claim, then user-registered.
    const [validated] = await invites.get(invite!.token);
    assert.ok(await validated!.claim());
    await rt.modules.get("example.com", "invites_register")!.fireEventAsync("user-registered", { username: "newbie", host: "example.com", source: "test", validated_invite: validated });
    await receiver.until((ds) => ds.filter((d) => d.answered === 204).length === 3, 10_000, "three events accepted");
    assert.equal(receiver.uniqueByEvent(), { "invite-created": 1, "invite-used": 1, "user-registered": 1 });
    assert.is(receiver.deliveries.length, 6, "each event twice: a 500, then a 204");
    assert.ok(receiver.deliveries.every((d) => d.signatureOk), "every signature verifies");
    const created = receiver.deliveries.find((d) => d.event === "invite-created")!.body;
    assert.is(created.type, "invite-created");
    assert.is(created.host, "example.com");
    assert.equal(created.data.invite, { id: invite!.token, type: "account", jid: "example.com", created_at: invite!.created_at, expires: invite!.expires, reusable: false, source: "api/token/k1" });
    const used = receiver.deliveries.find((d) => d.event === "invite-used")!.body;
    assert.is(used.data.jid, "newbie@example.com");
    assert.is(used.data.invite.id, invite!.token);
    const registered = receiver.deliveries.find((d) => d.event === "user-registered")!.body;
    assert.equal(registered.data, { username: "newbie", jid: "newbie@example.com", source: "test", invite_id: invite!.token });
    await receiver.until(() => true, 10, "");
    for (let i = 0; i < 50 && (await outbox.users()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await outbox.users(), [], "delivered entries leave the outbox");
  } finally {
    await rt.stop();
  }
});

test("a webhook only gets the events it lists; a redirect is a failure, not followed", async () => {
  receiver.deliveries.length = 0;
  receiver.answer = () => 204;
  const redirects: string[] = [];
  const other = await startReceiver(SECRET);
  // Redirected to a receiver that would accept it: followed, it would arrive there.
  other.answer = (d) => (redirects.push(d.id), { status: 307, location: receiver.url });
  const rt = await runtime({
    invites_webhooks: [
      { url: receiver.url, events: ["invite-used"], secret: SECRET },
      { url: other.url, events: ["invite-created"], secret: SECRET },
    ],
  });
  try {
    await invitesOf(rt).createAccount();
    await other.until((ds) => ds.length >= 2, 10_000, "a retried delivery");
    assert.is(receiver.deliveries.length, 0, "invite-created is sent neither to a webhook that lists only invite-used nor along the redirect");
    assert.is(new Set(redirects).size, 1, "the same event retried");
  } finally {
    await rt.stop();
    await other.close();
  }
});

test("a reloaded config applies to the next event: webhooks added, a new URL and secret; mistaken settings leave the running ones", async () => {
  const SECRET2 = "a-second-secret-of-enough-length";
  const second = await startReceiver(SECRET2);
  receiver.deliveries.length = 0;
  receiver.answer = () => 204;
  const dir = mkdtempSync(join(tmpdir(), "webhooks-reload-"));
  const rt = await runtime({}, dir); // none configured at start
  // What a SIGHUP does (src/server-reload.ts): apply the config, then announce it.
  const reload = async (invites_webhooks: unknown) => {
    const next = configOf({ invites_webhooks }, dir);
    await applyConfig(rt, next);
    rt.globalEvents.fire("config-reloaded", { config: next });
  };
  const created = async () => (await invitesOf(rt).createAccount())[0]!.token;
  const sentTo = (r: Receiver, token: string) => r.deliveries.filter((d) => d.body.data.invite?.id === token);
  const logs = captureLogs();
  try {
    const before = await created();
    await reload([{ url: receiver.url, events: ["invite-created"], secret: SECRET }]);
    const first = await created();
    await receiver.until((ds) => ds.some((d) => d.body.data.invite?.id === first), 10_000, "the first invite after the reload");
    assert.is(sentTo(receiver, before).length, 0, "an event from before the webhook was configured is not sent");

    await reload([{ url: second.url, events: ["invite-created"], secret: SECRET2 }]);
    const rotated = await created();
    await second.until((ds) => ds.some((d) => d.body.data.invite?.id === rotated), 10_000, "delivered to the new URL");
    assert.ok(sentTo(second, rotated).every((d) => d.signatureOk), "signed with the new secret");
    assert.is(sentTo(receiver, rotated).length, 0, "not sent to the URL no longer listed");

    await reload([{ url: "ftp://example.net/", events: ["invite-created"], secret: SECRET2 }]);
    assert.ok(
      logs.messages("error").some((m) => /^invites_webhooks not reloaded, the previous settings stay: .*only http and https URLs/.test(m)),
      logs.messages("error").join("\n"),
    );
    const kept = await created();
    await second.until((ds) => ds.some((d) => d.body.data.invite?.id === kept), 10_000, "still delivered with the running settings");
  } finally {
    logs.restore();
    setLogLevel("error");
    await rt.stop();
    await second.close();
  }
});

test("a full outbox drops its oldest events, keeps the newest", async () => {
  // Nothing listens on port 9 of loopback here, and retries wait long: entries stay.
  const rt = await runtime({ invites_webhooks: [{ url: "http://127.0.0.1:9/", events: ALL, secret: SECRET }], invites_webhooks_outbox_max: 2, invites_webhooks_retry_base: 3600 });
  try {
    const tokens: string[] = [];
    for (let i = 0; i < 4; i++) tokens.push((await invitesOf(rt).createAccount())[0]!.token);
    const outbox = await rt.storage.open("example.com", "invites_webhooks_outbox", "keyval");
    const kept = await Promise.all((await outbox.users()).map(async (k) => JSON.parse(String(recordOf(await outbox.get(k)).body)).data.invite.id));
    assert.equal(kept.sort(), tokens.slice(2).sort());
  } finally {
    await rt.stop();
  }
});

test("two instances on one database: each event delivered once", async () => {
  receiver.deliveries.length = 0;
  receiver.answer = () => 204;
  const dir = mkdtempSync(join(tmpdir(), "webhooks-shared-"));
  const opts = { invites_webhooks: [{ url: receiver.url, events: ALL, secret: SECRET }] };
  const a = await runtime(opts, dir);
  const b = await runtime(opts, dir);
  try {
    for (let i = 0; i < 6; i++) await invitesOf(i % 2 ? a : b).createAccount();
    await receiver.until((ds) => new Set(ds.map((d) => d.id)).size === 6, 10_000, "six events");
    await new Promise((r) => setTimeout(r, 500)); // both workers have polled several times since
    assert.is(receiver.deliveries.length, 6, "no event delivered twice");
  } finally {
    await a.stop();
    await b.stop();
  }
});

test.run();
