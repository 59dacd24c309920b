/**
 * Prosody's map view over a keyval store of the same name (core/storagemanager.lua's shim, used
 * whenever a driver has no native map store — e.g. internal storage in 0.12):
 *
 * - `get(u, k)`  = `keyval.get(u)?.[k]`
 * - `set(u, k, v)` = read the whole record, change one key, write the whole record back
 *   (an emptied record is deleted, as the keyval store does for `{}`).
 * - `take(u, k)` (our extension) = the same read-modify-write, handing back the removed value.
 *
 * Read-modify-write cycles of the same user are serialised inside this process (Prosody's Lua code is
 * synchronous, so its shim never interleaves two updates); across processes the keyval driver's own
 * semantics apply (for internal storage: last rename wins, exactly like Prosody).
 */
import { REMOVE, type KeyvalData, type KeyvalStore, type MapStore, type Remove, type StoreRecord, type StoreValue } from "./types.js";
import { applyMapChanges, checkMapChangesOnSequence, isStoreRecord } from "./values.js";

/** `rec[key]` exists; never for a sequence (Prosody: a string key of an integer-keyed table is nil). */
function has(rec: KeyvalData | undefined, key: string): rec is StoreRecord {
  return isStoreRecord(rec) && Object.prototype.hasOwnProperty.call(rec, key);
}

export function mapOverKeyval(kv: KeyvalStore): MapStore {
  // Per-user promise chains: the tail of the queue of read-modify-write operations for that user.
  const chains = new Map<string | null, Promise<unknown>>();
  const serial = <T>(user: string | null, op: () => Promise<T>): Promise<T> => {
    const prev = chains.get(user) ?? Promise.resolve();
    const next = prev.then(op, op);
    const tail = next.then(
      () => undefined,
      () => undefined,
    );
    chains.set(user, tail);
    void tail.then(() => {
      if (chains.get(user) === tail) chains.delete(user);
    });
    return next;
  };

  const modify = (user: string | null, changes: [string, StoreValue | undefined][]) =>
    serial(user, async () => {
      const old = await kv.get(user);
      if (Array.isArray(old)) {
        checkMapChangesOnSequence(changes, () => `map store over keyval (user ${user === null ? "nil" : JSON.stringify(user)})`);
        return;
      }
      const rec: StoreRecord = old ?? {};
      if (applyMapChanges(rec, changes)) await kv.set(user, rec);
    });

  /** Users with a record, the host-wide record as `null` ("" is the SQL spelling of it). */
  const allUsers = async (): Promise<(string | null)[]> => {
    const users: (string | null)[] = (await kv.users()).filter((u) => u !== "");
    users.push(null);
    return users;
  };

  const norm = (v: StoreValue | Remove | undefined | null): StoreValue | undefined =>
    v === REMOVE || v === null ? undefined : v;

  return {
    type: "map",
    async get(user, key) {
      const rec = await kv.get(user);
      return has(rec, key) ? rec[key] : undefined;
    },
    set(user, key, value) {
      return modify(user, [[key, norm(value)]]);
    },
    setKeys(user, changes) {
      return modify(
        user,
        Object.keys(changes).map((k) => [k, norm(changes[k])]),
      );
    },
    // Atomic within this process (the user's queue); across processes only as atomic as the keyval
    // driver's read + write (our drivers all have native map stores, so the shim only serves others).
    take(user, key) {
      return serial(user, async () => {
        const rec = await kv.get(user);
        if (!has(rec, key)) return undefined;
        const value = rec[key];
        delete rec[key];
        await kv.set(user, rec);
        return value;
      });
    },
    async getAll(key) {
      const out = new Map<string, StoreValue>();
      for (const user of await allUsers()) {
        const rec = await kv.get(user);
        if (has(rec, key)) out.set(user ?? "", rec[key]!);
      }
      return out;
    },
    async deleteAll(key) {
      for (const user of await allUsers()) await modify(user, [[key, undefined]]);
    },
  };
}
