/**
 * In-memory storage (Prosody's `mod_storage_memory`): nothing persists past the process.
 *
 * keyval and map are both native and are two views of the same records (as with SQL), so a map
 * store and the keyval store of the same name see each other's data. Values are deep-copied on
 * the way in and out, so callers can never mutate stored data through a reference.
 */
import { applyMapChanges, checkMapChangesOnSequence, cloneKeyval, cloneValue } from "../values.js";
import {
  REMOVE,
  type KeyvalStore,
  type MapStore,
  type KeyvalData,
  type Remove,
  type StorageProvider,
  type Store,
  type StoreRecord,
  type StoreType,
  type StoreValue,
} from "../types.js";

type Records = Map<string | null, KeyvalData>;

function isEmpty(rec: StoreRecord): boolean {
  for (const _ in rec) return false;
  return true;
}

export function createMemoryProvider(): StorageProvider {
  const stores = new Map<string, Records>();
  const recordsOf = (store: string): Records => {
    let r = stores.get(store);
    if (!r) stores.set(store, (r = new Map()));
    return r;
  };

  function keyval(store: string): KeyvalStore {
    const where = (user: string | null) => `memory store "${store}" (user ${user === null ? "nil" : JSON.stringify(user)})`;
    return {
      type: "keyval",
      async get(user) {
        const rec = stores.get(store)?.get(user);
        return rec ? (cloneValue(rec) as KeyvalData) : undefined;
      },
      async set(user, data) {
        const rec = cloneKeyval(data, where(user));
        if (rec) recordsOf(store).set(user, rec);
        else stores.get(store)?.delete(user);
      },
      async setIfAbsent(user, data) {
        const rec = cloneKeyval(data, where(user));
        if (stores.get(store)?.has(user)) return false;
        if (rec) recordsOf(store).set(user, rec);
        return true;
      },
      async users() {
        const out: string[] = [];
        for (const u of stores.get(store)?.keys() ?? []) if (u !== null) out.push(u);
        return out;
      },
    };
  }

  function map(store: string): MapStore {
    const where = (user: string | null, key: string) =>
      `memory store "${store}" (user ${user === null ? "nil" : JSON.stringify(user)}, key ${JSON.stringify(key)})`;
    // Validate everything first so a bad value leaves the record untouched (atomic setKeys).
    const apply = (user: string | null, changes: [string, StoreValue | undefined][]) => {
      const records = recordsOf(store);
      const old = records.get(user);
      if (Array.isArray(old)) {
        checkMapChangesOnSequence(changes, () => where(user, changes[0]?.[0] ?? ""));
        return;
      }
      const rec: StoreRecord = { ...(old ?? {}) };
      applyMapChanges(rec, changes);
      if (isEmpty(rec)) records.delete(user);
      else records.set(user, rec);
    };
    const prepare = (user: string | null, key: string, value: unknown): StoreValue | undefined =>
      value === undefined || value === null || value === REMOVE ? undefined : cloneValue(value, where(user, key));
    return {
      type: "map",
      async get(user, key) {
        const rec = stores.get(store)?.get(user);
        if (!rec || Array.isArray(rec) || !Object.prototype.hasOwnProperty.call(rec, key)) return undefined;
        return cloneValue(rec[key]);
      },
      async set(user, key, value) {
        apply(user, [[key, prepare(user, key, value)]]);
      },
      async setKeys(user, changes: Record<string, StoreValue | Remove>) {
        apply(
          user,
          Object.keys(changes).map((key) => [key, prepare(user, key, changes[key])]),
        );
      },
      async take(user, key) {
        // Synchronous between the read and the delete: nothing can interleave.
        const rec = stores.get(store)?.get(user);
        if (!rec || Array.isArray(rec) || !Object.prototype.hasOwnProperty.call(rec, key)) return undefined;
        const value = rec[key]!;
        apply(user, [[key, undefined]]);
        return value; // no longer stored: the caller may keep it
      },
      async getAll(key) {
        const out = new Map<string, StoreValue>();
        for (const [user, rec] of stores.get(store) ?? []) {
          if (!Array.isArray(rec) && Object.prototype.hasOwnProperty.call(rec, key)) out.set(user ?? "", cloneValue(rec[key]));
        }
        return out;
      },
      async deleteAll(key) {
        const records = stores.get(store);
        if (!records) return;
        for (const user of [...records.keys()]) apply(user, [[key, undefined]]);
      },
    };
  }

  return {
    name: "memory",
    open(store: string, type: StoreType): Store | undefined {
      if (type === "keyval") return keyval(store);
      if (type === "map") return map(store);
      return undefined;
    },
    async purge(user: string) {
      for (const records of stores.values()) records.delete(user);
    },
  };
}
