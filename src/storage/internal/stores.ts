/**
 * The internal driver's keyval and map stores over its data files. A keyval record is one file; a
 * map is native here but behaves exactly like Prosody's shim (one file per user holding all keys;
 * a map store and the keyval store of the same name are the same file).
 */
import { cloneKeyval, cloneValue } from "../values.js";
import { REMOVE, type KeyvalStore, type MapStore, type Remove, type StoreValue } from "../types.js";
import type { DataFiles } from "./data-files.js";
import type { FileUpdates, KeyChange, WithLock } from "./file-updates.js";

/** What the stores of one provider share. */
export interface StoreDeps {
  files: DataFiles;
  updates: FileUpdates;
  withLock: WithLock;
  /** Path of `user`'s file of `store` (null: the host-wide record); throws for a bad store name. */
  pathOf(store: string, user: string | null): string;
  /** Decoded names of the users with a file in `store`. */
  listUsers(store: string): Promise<string[]>;
}

const label = (store: string, user: string | null) => `internal store "${store}" (user ${user === null ? "nil" : JSON.stringify(user)})`;

export function keyvalStore(deps: StoreDeps, store: string): KeyvalStore {
  const { files, withLock, pathOf } = deps;
  pathOf(store, null); // validates the name
  return {
    type: "keyval",
    get: (user) => files.readOwned(pathOf(store, user)),
    async set(user, data) {
      const rec = cloneKeyval(data, label(store, user));
      const file = pathOf(store, user);
      await withLock(file, () => files.write(file, rec));
    },
    async setIfAbsent(user, data) {
      const rec = cloneKeyval(data, label(store, user));
      const file = pathOf(store, user);
      if (!rec) return !(await files.readShared(file)).rec; // nothing to write
      return withLock(file, async () => {
        if ((await files.readShared(file)).rec) return false;
        await files.write(file, rec);
        return true;
      });
    },
    users: () => deps.listUsers(store),
  };
}

export function mapStore(deps: StoreDeps, store: string): MapStore {
  const { files, updates, pathOf } = deps;
  pathOf(store, null);

  const prepare = (user: string | null, key: string, value: unknown): StoreValue | undefined =>
    value === undefined || value === null || value === REMOVE ? undefined : cloneValue(value, `${label(store, user)}, key ${JSON.stringify(key)}`);

  const allUsers = async (): Promise<(string | null)[]> => [...(await deps.listUsers(store)), null];

  return {
    type: "map",
    get: (user, key) => files.readValue(pathOf(store, user), key),
    async set(user, key, value) {
      await updates.modify(pathOf(store, user), [[key, prepare(user, key, value)]]);
    },
    async setKeys(user, changes: Record<string, StoreValue | Remove>) {
      const list = Object.keys(changes).map((k): KeyChange => [k, prepare(user, k, changes[k])]);
      await updates.modify(pathOf(store, user), list);
    },
    take: (user, key) => updates.take(pathOf(store, user), key),
    async getAll(key) {
      const out = new Map<string, StoreValue>();
      for (const user of await allUsers()) {
        const v = await files.readValue(pathOf(store, user), key);
        if (v !== undefined) out.set(user ?? "", v);
      }
      return out;
    },
    async deleteAll(key) {
      for (const user of await allUsers()) await updates.modify(pathOf(store, user), [[key, undefined]]);
    },
  };
}
