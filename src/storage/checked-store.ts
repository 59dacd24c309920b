/**
 * What every store handed to a module goes through, whatever its driver: the argument rules of
 * Prosody's storage API, checked in one place rather than in each driver.
 *
 * - `getAll` / `deleteAll` take only a non-empty string key, and otherwise fail with Prosody's own
 *   messages ("get_all only supports non-empty string keys", core/storagemanager.lua and
 *   mod_storage_sql). Without this, `deleteAll(true)` deleted the key "true" of every user.
 * - A user is a string or `null` (Prosody's nil; `undefined` is taken as nil too, as Lua would).
 *   Drivers disagreed on anything else (SQL: host-wide record, memory: a record of its own).
 * - Map keys are strings: the drivers store string keys only (a number would come back as text).
 *
 * Misuse rejects with a TypeError (a programming error: retrying cannot help, so it must not look
 * like a StorageError, which HTTP answers with "503, try again").
 *
 * Our extensions (`MapStore.take`, `KeyvalStore.setIfAbsent`) are emulated for a third-party
 * driver that lacks them: serialised in this process only.
 *
 * `storeFor()` is how the storage manager (and the conformance suite) gets a store from a driver:
 * native map store, else Prosody's map shim over the keyval store of the same name.
 */
import { mapOverKeyval } from "./map-shim.js";
import type { KeyvalStore, MapStore, Remove, Store, StorageProvider, StoreType, StoreValue } from "./types.js";

const GET_ALL_KEY = "get_all only supports non-empty string keys";
const DELETE_ALL_KEY = "delete_all only supports non-empty string keys";

/** A user argument as drivers expect it: a string or null. */
function userArg(user: unknown, method: string): string | null {
  if (user === null || user === undefined) return null;
  if (typeof user !== "string") throw new TypeError(`${method}: user must be a string or null (got ${typeof user})`);
  return user;
}

function keyArg(key: unknown, method: string): string {
  if (typeof key !== "string") throw new TypeError(`${method}: key must be a string (got ${typeof key})`);
  return key;
}

/** Runs `fn` with checked arguments; a bad argument is a rejected promise, like any store failure. */
function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The driver's store for `name`, or Prosody's map shim when the driver has keyval only. */
export function storeFor(provider: StorageProvider, name: string, type: StoreType): Store | undefined {
  const opened = provider.open(name, type);
  if (opened || type !== "map") return opened;
  const kv = provider.open(name, "keyval");
  return kv && kv.type === "keyval" ? mapOverKeyval(kv) : undefined;
}

export function checkedStore(store: KeyvalStore): KeyvalStore;
export function checkedStore(store: MapStore): MapStore;
export function checkedStore(store: Store): Store;
export function checkedStore(store: Store): Store {
  return store.type === "map" ? checkedMap(store) : checkedKeyval(store);
}

function checkedKeyval(kv: KeyvalStore): KeyvalStore {
  // A third-party driver written before `setIfAbsent` existed: emulate it like `take` below.
  const setIfAbsent = typeof kv.setIfAbsent === "function" ? kv.setIfAbsent.bind(kv) : emulatedSetIfAbsent(kv);
  return {
    type: "keyval",
    get: (user) => guarded(() => kv.get(userArg(user, "get"))),
    set: (user, data) => guarded(() => kv.set(userArg(user, "set"), data)),
    setIfAbsent: (user, data) => guarded(() => setIfAbsent(userArg(user, "setIfAbsent"), data)),
    users: () => kv.users(),
  };
}

function checkedMap(m: MapStore): MapStore {
  // A third-party driver written before `take` existed: emulate it (get, then delete), serialised
  // per driver store in this process only; atomic across processes only if the driver makes it so.
  const take = typeof m.take === "function" ? m.take.bind(m) : emulatedTake(m);
  return {
    type: "map",
    get: (user, key) => guarded(() => m.get(userArg(user, "get"), keyArg(key, "get"))),
    set: (user, key, value) => guarded(() => m.set(userArg(user, "set"), keyArg(key, "set"), value)),
    setKeys: (user, changes) =>
      guarded(() => {
        if (changes === null || typeof changes !== "object" || Array.isArray(changes)) {
          throw new TypeError("setKeys: changes must be an object of key → value (or REMOVE)");
        }
        return m.setKeys(userArg(user, "setKeys"), changes as Record<string, StoreValue | Remove>);
      }),
    take: (user, key) => guarded(() => take(userArg(user, "take"), keyArg(key, "take"))),
    getAll: (key) =>
      guarded(() => {
        if (typeof key !== "string" || key === "") throw new TypeError(GET_ALL_KEY);
        return m.getAll(key);
      }),
    deleteAll: (key) =>
      guarded(() => {
        if (typeof key !== "string" || key === "") throw new TypeError(DELETE_ALL_KEY);
        return m.deleteAll(key);
      }),
  };
}

/** Tail of the queue of emulated read-then-write steps, per driver store (shared by its wrappers). */
const chains = new WeakMap<object, Promise<unknown>>();

function serialised<T>(store: object, step: () => Promise<T>): Promise<T> {
  const run = (chains.get(store) ?? Promise.resolve()).then(step);
  chains.set(
    store,
    run.catch(() => undefined),
  );
  return run;
}

function emulatedTake(m: MapStore): MapStore["take"] {
  return (user, key) =>
    serialised(m, async () => {
      const value = await m.get(user, key);
      if (value !== undefined) await m.set(user, key, undefined);
      return value;
    });
}

function emulatedSetIfAbsent(kv: KeyvalStore): KeyvalStore["setIfAbsent"] {
  return (user, data) =>
    serialised(kv, async () => {
      if (await kv.get(user)) return false;
      await kv.set(user, data);
      return true;
    });
}
