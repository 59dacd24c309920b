/**
 * The `invites_webhooks` option and its companions, checked when the module loads: a mistake
 * (an unknown event name, a URL that is not http/https, a missing secret) stops the module with a
 * message naming the entry, rather than events silently never sent.
 *
 *   invites_webhooks = {
 *     { url = "https://hooks.example.net/xmpp", events = { "invite-created", "invite-used", "user-registered" }, secret = "…" };
 *   }
 */
import type { Module } from "prosody-ts";

export const EVENT_NAMES = ["invite-created", "invite-used", "user-registered"] as const;
export type WebhookEventName = (typeof EVENT_NAMES)[number];

export interface Webhook {
  url: string;
  events: Set<WebhookEventName>;
  secret: string;
}

export interface WebhookSettings {
  hooks: Webhook[];
  /** Per attempt, seconds (`invites_webhooks_timeout`, default 10). */
  timeoutS: number;
  /** First retry delay, seconds (`invites_webhooks_retry_base`, default 10); doubles per attempt. */
  retryBaseS: number;
  /** Largest retry delay, seconds (`invites_webhooks_retry_max`, default 3600). */
  retryMaxS: number;
  /** Attempts before an event is given up (`invites_webhooks_max_attempts`, default 25: about a day). */
  maxAttempts: number;
  /** Events kept waiting at most, per host (`invites_webhooks_outbox_max`, default 10000); the oldest go first. */
  outboxMax: number;
  /** How often the outbox is looked at for retries and other instances' events, seconds (`invites_webhooks_poll`, default 5). */
  pollS: number;
}

export class WebhookConfigError extends Error {
  override name = "WebhookConfigError";
}

function positive(module: Module, name: string, dflt: number, min: number): number {
  const v = module.getOptionNumber(name, dflt) ?? dflt;
  if (!(v >= min) || !Number.isFinite(v)) throw new WebhookConfigError(`${name} must be a number >= ${min}, got ${String(module.getOption(name))}`);
  return v;
}

/** Lua tables arrive as arrays (sequences) or objects (keyed); a sequence read as an object has keys "1".."n". */
function sequence(v: unknown): unknown[] | undefined {
  if (Array.isArray(v)) return v;
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.every((k, i) => k === String(i + 1))) return keys.map((k) => (v as Record<string, unknown>)[k]);
  }
  return undefined;
}

/** Reads and checks the options; throws WebhookConfigError naming the first problem. */
export function readSettings(module: Module): WebhookSettings {
  const raw = module.getOption("invites_webhooks");
  const list = raw === undefined ? [] : sequence(raw);
  if (!list) throw new WebhookConfigError("invites_webhooks must be a list of { url = …, events = { … }, secret = … } tables");
  const hooks: Webhook[] = list.map((entry, i) => {
    const where = `invites_webhooks[${i + 1}]`;
    if (!entry || typeof entry !== "object" || Array.isArray(entry)) throw new WebhookConfigError(`${where} must be a table { url = …, events = { … }, secret = … }`);
    const e = entry as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!["url", "events", "secret"].includes(k)) throw new WebhookConfigError(`${where}: unknown field ${JSON.stringify(k)} (url, events, secret)`);
    }
    let url: URL;
    try {
      url = new URL(String(e.url ?? ""));
    } catch {
      throw new WebhookConfigError(`${where}.url: ${JSON.stringify(e.url ?? null)} is not a URL`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new WebhookConfigError(`${where}.url: only http and https URLs are allowed, not ${url.protocol}`);
    if (url.username || url.password) throw new WebhookConfigError(`${where}.url: credentials in the URL are not allowed (the signature authenticates us)`);
    const events = sequence(e.events);
    if (!events || events.length === 0) throw new WebhookConfigError(`${where}.events must list at least one of ${EVENT_NAMES.join(", ")}`);
    for (const name of events) {
      if (!(EVENT_NAMES as readonly unknown[]).includes(name)) {
        throw new WebhookConfigError(`${where}.events: unknown event ${JSON.stringify(name)} (known: ${EVENT_NAMES.join(", ")})`);
      }
    }
    if (typeof e.secret !== "string" || e.secret.length < 16) throw new WebhookConfigError(`${where}.secret must be a string of at least 16 characters (it signs every delivery)`);
    return { url: url.href, events: new Set(events as WebhookEventName[]), secret: e.secret };
  });
  const urls = new Set<string>();
  for (const h of hooks) {
    if (urls.has(h.url)) throw new WebhookConfigError(`invites_webhooks: ${h.url} is listed twice (merge its events into one entry)`);
    urls.add(h.url);
  }
  return {
    hooks,
    timeoutS: positive(module, "invites_webhooks_timeout", 10, 0.1),
    retryBaseS: positive(module, "invites_webhooks_retry_base", 10, 0.01),
    retryMaxS: positive(module, "invites_webhooks_retry_max", 3600, 0.01),
    maxAttempts: Math.floor(positive(module, "invites_webhooks_max_attempts", 25, 1)),
    outboxMax: Math.floor(positive(module, "invites_webhooks_outbox_max", 10000, 1)),
    pollS: positive(module, "invites_webhooks_poll", 5, 0.05),
  };
}

/** The delay before attempt `attempt + 1` (attempt ≥ 1): base·2^(attempt−1), capped, with "equal jitter" (half fixed, half random). */
export function retryDelayS(s: Pick<WebhookSettings, "retryBaseS" | "retryMaxS">, attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(s.retryMaxS, s.retryBaseS * 2 ** Math.min(attempt - 1, 40));
  return ceiling / 2 + (ceiling / 2) * random();
}
