/**
 * One delivery attempt: POST the entry's body to its URL, signed, with a timeout and without
 * following redirects. The signature scheme follows the well-known "timestamp.body" HMAC pattern:
 *
 *   Prosody-Webhook-Id:        the event id (stable across retries: deduplicate on it)
 *   Prosody-Webhook-Event:     invite-created | invite-used | user-registered
 *   Prosody-Webhook-Timestamp: Unix seconds of this attempt
 *   Prosody-Webhook-Signature: t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
 *
 * A receiver recomputes the HMAC over the timestamp header, a ".", and the raw body bytes, compares
 * in constant time, and refuses timestamps too far from its clock (replays).
 */
import { createHmac } from "node:crypto";
import fetch from "node-fetch";
import type { OutboxEntry } from "./outbox.js";

export const HEADER_ID = "Prosody-Webhook-Id";
export const HEADER_EVENT = "Prosody-Webhook-Event";
export const HEADER_TIMESTAMP = "Prosody-Webhook-Timestamp";
export const HEADER_SIGNATURE = "Prosody-Webhook-Signature";

export function sign(secret: string, timestamp: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

export type Outcome = { ok: true; status: number } | { ok: false; error: string };

export async function deliver(entry: OutboxEntry, secret: string, timeoutS: number, userAgent: string): Promise<Outcome> {
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    const res = await fetch(entry.url, {
      method: "POST",
      body: entry.body,
      redirect: "manual",
      follow: 0,
      compress: false,
      signal: AbortSignal.timeout(timeoutS * 1000),
      headers: {
        "Content-Type": "application/json",
        "User-Agent": userAgent,
        [HEADER_ID]: entry.id,
        [HEADER_EVENT]: entry.event,
        [HEADER_TIMESTAMP]: String(timestamp),
        [HEADER_SIGNATURE]: `t=${timestamp},v1=${sign(secret, timestamp, entry.body)}`,
      },
    });
    // The answer's body is not needed; reading at most a little of it frees the connection.
    res.body?.resume?.();
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    if (res.status >= 300 && res.status < 400) return { ok: false, error: `HTTP ${res.status} (redirects are not followed)` };
    return { ok: false, error: `HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error;
    return { ok: false, error: e.name === "AbortError" || e.name === "TimeoutError" ? `no answer within ${timeoutS} s` : e.message };
  }
}
