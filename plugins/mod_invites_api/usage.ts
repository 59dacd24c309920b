/**
 * When each API key was last used, for `list`: map store `invite_api_key_usage` (host-wide, key =
 * key id → { last_used = Unix seconds }), apart from the key records so that a write here can never
 * bring back a key deleted meanwhile, and Prosody's records stay as Prosody wrote them.
 *
 * Not a store write per request: a key's time is written when it was last written 60 s ago or more
 * (or never, in this process), in the background. So the stored time is within a minute of the true
 * last use (earlier, never later), and uses in the last minute before a crash may be lost. With
 * several server processes, each writes its own; the latest write wins.
 */
import type { MapStore, Module, StoreRecord } from "prosody-ts";
import { cachedPromise, now } from "prosody-ts/util";

const STORE = "invite_api_key_usage";
export const USAGE_PRECISION = 60;

export interface KeyUsage {
  /** Records a use of `keyId` at `at` (writes at most once per minute per key; never throws). */
  touch(keyId: string, at?: number): void;
  /** Last use per key id, as stored. */
  all(): Promise<Map<string, number>>;
  /** Drops a deleted key's entry. */
  forget(keyId: string): Promise<void>;
}

export function keyUsage(module: Module): KeyUsage {
  const store = cachedPromise(() => module.openStore(STORE, "map") as Promise<MapStore>);
  /** Key id → when this process last wrote its time. */
  const written = new Map<string, number>();
  return {
    touch(keyId, at = now()) {
      const last = written.get(keyId);
      if (last !== undefined && at - last < USAGE_PRECISION) return;
      written.set(keyId, at);
      store()
        .then((s) => s.set(null, keyId, { last_used: at } as unknown as StoreRecord))
        .catch((e) => {
          // Only the `list` column suffers; try again on the next use.
          written.delete(keyId);
          module.log("debug", "Could not record the use of API key %s: %s", keyId, e instanceof Error ? e.message : e);
        });
    },
    async all() {
      const kv = await module.openStore(STORE, "keyval");
      const out = new Map<string, number>();
      for (const [keyId, v] of Object.entries((await kv.get(null)) ?? {})) {
        const t = v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>).last_used : undefined;
        if (typeof t === "number") out.set(keyId, t);
      }
      return out;
    },
    async forget(keyId) {
      written.delete(keyId);
      const s = await store();
      // No write for a key never used (Prosody's data stays untouched by delete).
      if ((await s.get(null, keyId)) !== undefined) await s.set(null, keyId, undefined);
    },
  };
}
