/**
 * Opening stores per host with Prosody's driver resolution (core/storagemanager.lua):
 * `storage` (a driver name, or a table store → driver), else `default_storage`, else "internal".
 * Driver "X" is the `storage-provider` item named X on the host, loading mod_storage_X there
 * on first use; a driver that does not exist falls back to the null driver with a warning.
 *
 * Deliberate difference: a driver that exists but fails to start (its database is locked by
 * another process, too many open files, …) is not replaced by the null driver, whose reads find
 * nothing (a valid API key got 403 until restart): the open rejects with StorageUnavailableError
 * (HTTP: 503 + Retry-After) and the next open tries to start the driver again.
 *
 * Every store handed out goes through checkedStore (Prosody's argument rules, in one place).
 */
import { checkedStore, storeFor } from "../storage/checked-store.js";
import {
  StorageError,
  StorageUnavailableError,
  type KeyvalStore,
  type MapStore,
  type Store,
  type StorageProvider,
  type StoreType,
} from "../storage/types.js";
import { userInfo } from "node:os";
import type { Config } from "./config/index.js";
import type { EventBus } from "./events.js";
import { ModuleLoadError } from "./load-error.js";
import { createLogger } from "./logger.js";

/** What the storage manager needs from its process (the Runtime implements it). */
export interface StorageManagerRuntime {
  readonly config: Config;
  eventsFor(host: string): EventBus;
  readonly modules: {
    hostItems(host: string, key: string): unknown[];
    isLoaded(host: string, name: string): boolean;
    load(host: string, name: string): Promise<unknown>;
  };
}

const log = createLogger("storagemanager");

const NO_STORAGE = "no data storage active";

/** Reads find nothing; writes fail loudly (with why, when known) so no caller believes its data was kept. */
export function nullProviderWithReason(reason?: string): StorageProvider {
  return {
    name: "null",
    open(_store: string, type: StoreType): Store {
      return nullStore(type, reason);
    },
  };
}

function nullStore(type: StoreType, reason?: string): Store {
    const fail = async (): Promise<never> => {
      throw new StorageError(reason ? `${NO_STORAGE}: ${reason}` : NO_STORAGE);
    };
    if (type === "map") {
      const m: MapStore = {
        type: "map",
        get: async () => undefined,
        set: fail,
        setKeys: fail,
        take: fail,
        getAll: async () => new Map(),
        deleteAll: fail,
      };
      return m;
    }
    const kv: KeyvalStore = { type: "keyval", get: async () => undefined, set: fail, setIfAbsent: fail, users: async () => [] };
    return kv;
}

export const nullProvider = nullProviderWithReason();

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? "?"}`;
  }
}

export interface StoreOpenedEvent {
  host: string;
  store_name: string;
  store_type: StoreType;
  store: Store;
}

export class StorageManager {
  private readonly warned = new Set<string>();
  /** Why a driver could not be loaded on a host, for the errors its null fallback gives. */
  private readonly failures = new Map<string, StorageProvider>();

  constructor(private readonly runtime: StorageManagerRuntime) {}

  driverName(host: string, store: string): string {
    const config = this.runtime.config;
    const storage = config.get(host, "storage");
    let driver: unknown;
    if (typeof storage === "string") driver = storage;
    else if (storage && typeof storage === "object" && !Array.isArray(storage)) driver = storage[store];
    if (typeof driver !== "string") {
      const def = config.get(host, "default_storage");
      driver = typeof def === "string" ? def : "internal";
    }
    if (driver === "sql2") {
      log("error", "The 'sql2' storage module has now been renamed to 'sql', please update your config file: %s", config.file ?? "(embedded)");
      driver = "sql";
    }
    return driver as string;
  }

  async provider(host: string, driver: string): Promise<StorageProvider> {
    const find = () =>
      this.runtime.modules.hostItems(host, "storage-provider").find((p) => (p as StorageProvider).name === driver) as
        | StorageProvider
        | undefined;
    let provider = find();
    if (provider) return provider;
    if (driver === "null" || driver === "none") return nullProvider;
    const key = `${host}\0${driver}`;
    try {
      await this.runtime.modules.load(host, `storage_${driver}`);
    } catch (err) {
      if (!this.runtime.modules.isLoaded(host, `storage_${driver}`)) {
        const msg = err instanceof Error ? err.message : String(err);
        if (!(err instanceof ModuleLoadError && err.code === "module-not-found")) {
          // It exists but could not start now: an error for this caller, tried again on the next open.
          throw new StorageUnavailableError(`storage driver '${driver}' on ${host} is unavailable: ${msg} (running as user ${currentUser()})`, { cause: err });
        }
        if (!this.warned.has(key)) {
          this.warned.add(key);
          log("error", "Failed to load storage driver plugin %s on %s: %s", driver, host, msg);
        }
        this.failures.set(key, nullProviderWithReason(`storage driver '${driver}' could not be loaded: ${msg} (running as user ${currentUser()})`));
      }
    }
    provider = find();
    return provider ?? this.failures.get(key) ?? nullProvider;
  }

  open(host: string, store: string, type?: "keyval"): Promise<KeyvalStore>;
  open(host: string, store: string, type: "map"): Promise<MapStore>;
  open(host: string, store: string, type?: StoreType): Promise<Store>;
  async open(host: string, store: string, type: StoreType = "keyval"): Promise<Store> {
    if (typeof store !== "string" || store === "") throw new TypeError("openStore: store name must be a non-empty string");
    const driver = this.driverName(host, store);
    const provider = await this.provider(host, driver);
    if (provider.name === "null" && driver !== "null" && driver !== "none") {
      log("warn", "Falling back to null driver for %s storage on %s", store, host);
    }
    const opened = storeFor(provider, store, type) ?? nullStore(type);
    const event: StoreOpenedEvent = { host, store_name: store, store_type: type, store: opened };
    this.runtime.eventsFor(host).fire("store-opened", event);
    return checkedStore(event.store);
  }

  /** Deletes every record of `user` on `host` in every driver loaded there. */
  async purge(user: string, host: string): Promise<void> {
    for (const p of this.runtime.modules.hostItems(host, "storage-provider") as StorageProvider[]) {
      await p.purge?.(user);
    }
  }
}
