/**
 * mod_invites_webhooks: tells other systems about invites and registrations over HTTP.
 *
 *   invites_webhooks = { { url = "https://…", events = { "invite-created", "invite-used", "user-registered" }, secret = "…" } }
 *
 * Each event is written to a durable outbox (outbox.ts) before the request that caused it
 * answers, then delivered by a worker in the server process: signed (deliver.ts), retried with
 * exponential backoff and jitter (config.ts), at least once, each with an event id stable across
 * retries. Several of our instances on one database claim entries so that only one delivers an
 * entry at a time. A reloaded config applies to the next event and delivery (config-reloaded).
 */
import type { Module } from "prosody-ts";
import { now, uuid } from "prosody-ts/util";
import { readSettings, retryDelayS, type Webhook, type WebhookEventName } from "./config.js";
import { deliver } from "./deliver.js";
import { newEntry, openOutbox } from "./outbox.js";
import { inviteView, registeredView, usedView, type InviteRecord } from "./payloads.js";

const USER_AGENT = "prosody-ts mod_invites_webhooks";

export default function (module: Module): void {
  let settings = readSettings(module); // a config mistake stops the module here, with its message
  if (settings.hooks.length === 0) module.log("debug", "No invites_webhooks configured on %s", module.host);
  const log = (level: "warn" | "debug" | "info" | "error", msg: string, ...args: unknown[]) => module.log(level, msg, ...args);
  const outbox = openOutbox(module, log);
  let byUrl = new Map<string, Webhook>(settings.hooks.map((h) => [h.url, h]));
  const isServer = module.server.processType === "server";

  // A reloaded config (SIGHUP) applies to the next event and the next delivery: a rotated secret,
  // a new URL or event list need no restart. Entries queued for a URL no longer listed are
  // dropped when their turn comes (below). Settings with a mistake are refused, loudly, and the
  // running ones stay, as a config that cannot be read leaves the running config in place.
  module.hookGlobal("config-reloaded", () => {
    try {
      settings = readSettings(module);
      byUrl = new Map<string, Webhook>(settings.hooks.map((h) => [h.url, h]));
    } catch (err) {
      module.log("error", "invites_webhooks not reloaded, the previous settings stay: %s", err instanceof Error ? err.message : err);
    }
  });

  /** Writes one entry per webhook that wants `event`; durable when it resolves. */
  async function emit(event: WebhookEventName, data: Record<string, unknown>): Promise<undefined> {
    const targets = settings.hooks.filter((h) => h.events.has(event));
    if (targets.length === 0) return undefined;
    const id = uuid();
    const body = JSON.stringify({ id, type: event, host: module.host, created_at: now(), data });
    const at = Date.now();
    await outbox.add(targets.map((h) => newEntry(id, event, h.url, body, at)), settings.outboxMax);
    if (isServer) setImmediate(kick);
    return undefined;
  }

  // Fired with fireEventAsync by their modules: the promise is awaited before the request answers.
  module.hook("invite-stored", (invite: InviteRecord) => emit("invite-created", { invite: inviteView(invite) }));
  module.hook("invite-used", (e: { invite?: InviteRecord; username?: string; host?: string }) => emit("invite-used", usedView(e)));
  // After mod_invites_register (priority 0): a registration it undoes never reaches this handler.
  module.hook("user-registered", (e: Parameters<typeof registeredView>[0]) => emit("user-registered", registeredView(e)), -10);

  if (!isServer) return;

  // --- the worker ---
  const leaseMs = () => settings.timeoutS * 1000 + 3000;
  let stopped = false;
  let current: Promise<void> | undefined;
  let again = false;
  let passes = 0;

  function kick(): void {
    if (stopped) return;
    if (current) {
      again = true;
      return;
    }
    current = (async () => {
      try {
        do {
          again = false;
          await pass();
        } while (again && !stopped);
      } catch (err) {
        module.log("warn", "Webhook delivery pass failed, will retry: %s", err instanceof Error ? err.message : err);
      } finally {
        current = undefined;
      }
    })();
  }

  async function pass(): Promise<void> {
    for (const key of await outbox.keys()) {
      if (stopped) return;
      const seen = await outbox.get(key);
      if (!seen || seen.next_ms > Date.now()) continue;
      if (!(await outbox.claim(key, leaseMs()))) continue;
      try {
        const entry = await outbox.get(key); // delivered by another instance meanwhile?
        if (!entry) continue;
        const hook = byUrl.get(entry.url);
        if (!hook) {
          module.log("warn", "Dropping webhook event %s (%s): %s is no longer in invites_webhooks", entry.id, entry.event, entry.url);
          await outbox.remove(key);
          continue;
        }
        const outcome = await deliver(entry, hook.secret, settings.timeoutS, USER_AGENT);
        if (outcome.ok) {
          await outbox.remove(key);
          module.log("debug", "Delivered webhook event %s (%s) to %s: HTTP %d", entry.id, entry.event, entry.url, outcome.status);
          continue;
        }
        const attempts = entry.attempts + 1;
        if (attempts >= settings.maxAttempts) {
          await outbox.remove(key);
          module.log("error", "Gave up webhook event %s (%s) to %s after %d attempts: %s", entry.id, entry.event, entry.url, attempts, outcome.error);
          continue;
        }
        const delayS = retryDelayS(settings, attempts);
        await outbox.update(key, { ...entry, attempts, next_ms: Date.now() + delayS * 1000, last_error: outcome.error });
        module.log("warn", "Webhook event %s (%s) to %s failed (%s), attempt %d; next in %s s", entry.id, entry.event, entry.url, outcome.error, attempts, delayS.toFixed(1));
      } finally {
        await outbox.release(key).catch(() => undefined);
      }
    }
    if (++passes % 20 === 1) await outbox.sweepClaims();
  }

  module.addTimer(0, () => {
    kick();
    return settings.pollS;
  });
  module.onUnload(async () => {
    stopped = true;
    await current;
  });
}
