/**
 * The durable outbox of one host: one keyval record per (event, webhook) in store
 * `invites_webhooks_outbox`, written before the request that caused the event answers, removed
 * only once the receiver accepted it (or it was given up). Keys sort by creation time.
 *
 * Claims (store `invites_webhooks_claims`, one record `{ lease = "OWNER|UNTIL_MS" }` per entry
 * being delivered) keep two of our instances on one database from delivering the same entry at
 * the same time: a claim is taken with setIfAbsent (atomic in every driver), and one whose lease
 * ran out (its owner died mid-delivery) is taken over with map `take`, which only one taker wins.
 * Delivery stays at-least-once: an owner killed after the receiver got the request but before the
 * entry was removed leaves it to be sent again, with the same event id.
 */
import { createHash } from "node:crypto";
import type { KeyvalData, KeyvalStore, MapStore, Module, StoreRecord, StoreValue } from "prosody-ts";
import { cachedPromise, uuid } from "prosody-ts/util";

export interface OutboxEntry {
  /** The event's id: the same for every webhook and every attempt (receivers deduplicate on it). */
  id: string;
  event: string;
  url: string;
  /** The JSON body, exactly as signed and sent. */
  body: string;
  created_ms: number;
  attempts: number;
  next_ms: number;
  last_error?: string;
}

export interface Outbox {
  /** Writes entries (durable when it resolves); then trims the oldest beyond `max`. */
  add(entries: OutboxEntry[], max: number): Promise<void>;
  /** Keys of all entries, oldest first. */
  keys(): Promise<string[]>;
  get(key: string): Promise<OutboxEntry | undefined>;
  /** True when this instance now holds the entry for `leaseMs`. */
  claim(key: string, leaseMs: number): Promise<boolean>;
  release(key: string): Promise<void>;
  /** Removes a delivered (or abandoned) entry, then its claim. */
  remove(key: string): Promise<void>;
  update(key: string, entry: OutboxEntry): Promise<void>;
  /** Removes claims whose entry is gone and whose lease ran out (left by a killed instance). */
  sweepClaims(): Promise<void>;
}

const keyOf = (e: OutboxEntry) =>
  `${e.created_ms.toString(36).padStart(10, "0")}-${createHash("sha256").update(e.url).digest("hex").slice(0, 8)}-${e.id.replace(/-/g, "")}`;

export function openOutbox(module: Module, log: (level: "warn" | "debug", msg: string, ...args: unknown[]) => void): Outbox {
  const owner = uuid();
  const stores = cachedPromise(async () => {
    const [entries, claims, claimMap] = await Promise.all([
      module.openStore("invites_webhooks_outbox", "keyval") as Promise<KeyvalStore>,
      module.openStore("invites_webhooks_claims", "keyval") as Promise<KeyvalStore>,
      module.openStore("invites_webhooks_claims", "map") as Promise<MapStore>,
    ]);
    return { entries, claims, claimMap };
  });
  /** The `lease` of a claim record (a sequence is no claim). */
  const leaseField = (rec: KeyvalData | undefined): StoreValue | undefined => (rec && !Array.isArray(rec) ? rec.lease : undefined);
  const leaseOf = (v: unknown): { owner: string; until: number } | undefined => {
    if (typeof v !== "string") return undefined;
    const bar = v.lastIndexOf("|");
    return bar > 0 ? { owner: v.slice(0, bar), until: Number(v.slice(bar + 1)) } : undefined;
  };

  const outbox: Outbox = {
    async add(list, max) {
      const { entries } = await stores();
      await Promise.all(list.map((e) => entries.set(keyOf(e), e as unknown as StoreRecord)));
      const keys = await outbox.keys();
      const excess = keys.length - max;
      if (excess > 0) {
        // Full: the oldest events go (a receiver down this long is better told by the log than by
        // refusing registrations). Decided and documented; each drop is logged.
        const dropped = keys.slice(0, excess);
        await Promise.all(dropped.map((k) => entries.set(k, undefined)));
        log("warn", "Webhook outbox full (%d entries, invites_webhooks_outbox_max = %d): dropped the %d oldest", keys.length, max, excess);
      }
    },
    async keys() {
      const { entries } = await stores();
      return (await entries.users()).filter((k): k is string => typeof k === "string" && k !== "").sort();
    },
    async get(key) {
      const { entries } = await stores();
      const r = (await entries.get(key)) as Record<string, unknown> | undefined;
      if (!r || typeof r.id !== "string" || typeof r.body !== "string" || typeof r.url !== "string") return undefined;
      return r as unknown as OutboxEntry;
    },
    async claim(key, leaseMs) {
      const { claims, claimMap } = await stores();
      const mine = `${owner}|${Date.now() + leaseMs}`;
      if (await claims.setIfAbsent(key, { lease: mine })) return true;
      const seen = leaseOf(leaseField(await claims.get(key)));
      if (seen && seen.until > Date.now()) return false;
      // Ran out: take it over. Of several takers exactly one gets the old value back.
      const taken = await claimMap.take(key, "lease");
      const got = leaseOf(taken);
      if (taken === undefined) return claims.setIfAbsent(key, { lease: mine });
      if (got && got.until <= Date.now()) {
        log("debug", "Took over the stale claim on webhook entry %s", key);
        return claims.setIfAbsent(key, { lease: mine });
      }
      // A fresh claim was taken by mistake (renewed in between): put it back, stay away.
      await claims.setIfAbsent(key, { lease: taken as string });
      return false;
    },
    async release(key) {
      const { claims } = await stores();
      const cur = leaseOf(leaseField(await claims.get(key)));
      if (cur?.owner === owner) await claims.set(key, undefined);
    },
    async remove(key) {
      const { entries } = await stores();
      await entries.set(key, undefined);
      await outbox.release(key);
    },
    async update(key, entry) {
      const { entries } = await stores();
      await entries.set(key, entry as unknown as StoreRecord);
    },
    async sweepClaims() {
      const { entries, claims } = await stores();
      for (const key of await claims.users()) {
        if (typeof key !== "string" || key === "") continue;
        const lease = leaseOf(leaseField(await claims.get(key)));
        if (lease && lease.until > Date.now()) continue;
        if ((await entries.get(key)) === undefined) await claims.set(key, undefined);
      }
    },
  };
  return outbox;
}

/** A new entry for `event` to `url`, due now. */
export function newEntry(id: string, event: string, url: string, body: string, nowMs = Date.now()): OutboxEntry {
  return { id, event, url, body, created_ms: nowMs, attempts: 0, next_ms: nowMs };
}
