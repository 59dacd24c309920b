/**
 * The `module` object a plugin receives (Prosody's core/moduleapi.lua). One instance per
 * (host, module); a global module's per-host wrapper (for `addHost`) is another instance that
 * shares the global one's exports. Everything it registers is written to its ModuleRecord, which
 * the module manager owns and releases on unload.
 */
import { dirname } from "node:path";
import type { Config } from "./config/index.js";
import type { EventBus } from "./events.js";
import { createLogger, type Logger } from "./logger.js";
import type { HookRecord, ModuleRecord } from "./module-record.js";
import {
  resolveOptionPath,
  toOptionArray,
  toOptionBoolean,
  toOptionNumber,
  toOptionSet,
  toOptionString,
  unionSets,
} from "./options.js";
import type {
  CommandContext,
  EventHandler,
  ItemEvent,
  LogLevel,
  Module,
  OptionValue,
  ServerContext,
  Unhook,
} from "./types.js";
import type { Store, StoreType } from "../storage/types.js";

/** What a module object needs from the process hosting it (the Runtime implements it). */
export interface ModuleRuntime extends ServerContext {
  readonly config: Config;
  readonly globalEvents: EventBus;
  eventsFor(host: string): EventBus;
  shared(path: string): object;
  readonly storage: { open(host: string, store: string, type: StoreType): Promise<Store> };
  readonly modules: ModuleDirectory;
}

/** What a module object needs from the module manager. */
export interface ModuleDirectory {
  /** Loads `name` for `requester` (or finds it loaded) and records the dependency. */
  depend(requester: Module, record: ModuleRecord, name: string): Promise<Record<string, any>>;
  hostItemsWithSource(host: string, key: string): Array<{ source: Module; item: unknown }>;
}

export class ModuleImpl implements Module {
  readonly name: string;
  host: string;
  global: boolean | undefined;
  readonly path: string;
  exports: Record<string, any>;
  load?: () => unknown;
  unload?: () => unknown;
  addHost?: (hostModule: Module) => unknown;
  command?: (args: string[], ctx: CommandContext) => unknown;

  private logger: Logger;

  constructor(
    private readonly runtime: ModuleRuntime,
    /** Kept by the manager too; not part of the public API. */
    private readonly record: ModuleRecord,
    init: { name: string; host: string; path: string; exports?: Record<string, any>; global?: boolean },
  ) {
    this.name = init.name;
    this.host = init.host;
    this.path = init.path;
    this.exports = init.exports ?? {};
    this.global = init.global;
    this.logger = createLogger(init.global ? `mod_${init.name}` : `${init.host}:${init.name}`);
  }

  get server(): ServerContext {
    return this.runtime;
  }

  /** Runs `fn` when this module unloads (after `module.unload`, before its hooks and items go). */
  onUnload(fn: () => unknown): void {
    if (typeof fn !== "function") throw new TypeError("onUnload: expected a function");
    this.record.cleanups.push(fn);
  }

  // --- events ---

  private bus(): EventBus {
    return this.runtime.eventsFor(this.global ? "*" : this.host);
  }

  private track(bus: EventBus, event: string, handler: EventHandler, priority?: number): Unhook {
    if (typeof event !== "string" || event === "") throw new TypeError("hook: event name must be a non-empty string");
    bus.hook(event, handler, priority ?? 0);
    const rec: HookRecord = { bus, event, handler };
    const hooks = this.record.hooks;
    hooks.push(rec);
    return () => {
      bus.unhook(event, handler);
      const i = hooks.indexOf(rec);
      if (i >= 0) hooks.splice(i, 1);
    };
  }

  hook<T = any>(event: string, handler: EventHandler<T>, priority?: number): Unhook {
    return this.track(this.bus(), event, handler, priority);
  }

  hookGlobal<T = any>(event: string, handler: EventHandler<T>, priority?: number): Unhook {
    return this.track(this.runtime.globalEvents, event, handler, priority);
  }

  unhook(event: string, handler: EventHandler): void {
    const bus = this.bus();
    bus.unhook(event, handler);
    const hooks = this.record.hooks;
    for (let i = hooks.length - 1; i >= 0; i--) {
      const h = hooks[i]!;
      if (h.bus === bus && h.event === event && h.handler === handler) hooks.splice(i, 1);
    }
  }

  fireEvent<T = any>(event: string, data?: T): unknown {
    return this.bus().fire(event, data);
  }

  fireGlobalEvent<T = any>(event: string, data?: T): unknown {
    return this.runtime.globalEvents.fire(event, data);
  }

  fireEventAsync<T = any>(event: string, data?: T): Promise<unknown> {
    return this.bus().fireAsync(event, data);
  }

  fireGlobalEventAsync<T = any>(event: string, data?: T): Promise<unknown> {
    return this.runtime.globalEvents.fireAsync(event, data);
  }

  // --- modules ---

  async depends<T = Record<string, any>>(name: string): Promise<T> {
    return (await this.runtime.modules.depend(this, this.record, name)) as T;
  }

  setGlobal(): void {
    this.record.explicitGlobal = true;
    this.host = "*";
    this.global = true;
    this.logger = createLogger(`mod_${this.name}`);
  }

  context(host?: string): Module {
    const target = host ?? "*";
    const global = host === undefined ? false : target === "*";
    const self = this;
    // Reads fall through to the module, writes go to it; only host/global differ, so that
    // options, stores and hooks act for `target` (Prosody's module:context()).
    return new Proxy(this, {
      get(obj, prop, receiver) {
        if (prop === "host") return target;
        if (prop === "global") return global;
        if (prop === "logger") return createLogger(`${target}:${self.name}`);
        return Reflect.get(obj, prop, receiver);
      },
      set(obj, prop, value) {
        return Reflect.set(obj, prop, value);
      },
    });
  }

  // --- items ---

  provides(kind: string, item?: Record<string, any>): void {
    if (typeof kind !== "string" || kind === "") throw new TypeError("provides: kind must be a non-empty string");
    const provided: Record<string, any> = item ?? { ...this.exports };
    if (provided.name === undefined) {
      const prefix = `${kind.replace(/-/g, "_")}_`;
      provided.name = this.name.startsWith(prefix) ? this.name.slice(prefix.length) : this.name;
    }
    provided._provided_by = this.name;
    this.addItem(`${kind}-provider`, provided);
  }

  addItem(key: string, value: unknown): void {
    const list = this.record.items.get(key) ?? [];
    list.push(value);
    this.record.items.set(key, list);
    this.fireEvent(`item-added/${key}`, { source: this, item: value });
  }

  removeItem(key: string, value: unknown): void {
    const list = this.record.items.get(key);
    const i = list ? list.indexOf(value) : -1;
    if (!list || i < 0) return;
    list.splice(i, 1);
    this.fireEvent(`item-removed/${key}`, { source: this, item: value });
  }

  getHostItems<T = any>(key: string): T[] {
    return this.runtime.modules.hostItemsWithSource(this.host, key).map((x) => x.item) as T[];
  }

  handleItems<T = any>(
    key: string,
    added: (event: ItemEvent<T>) => void,
    removed: (event: ItemEvent<T>) => void,
    existing = true,
  ): void {
    this.hook(`item-added/${key}`, (e: ItemEvent<T>) => {
      added(e);
    });
    this.hook(`item-removed/${key}`, (e: ItemEvent<T>) => {
      removed(e);
    });
    if (existing !== false) {
      for (const { source, item } of this.runtime.modules.hostItemsWithSource(this.host, key)) {
        added({ source, item: item as T });
      }
    }
  }

  // --- options ---

  getOption(name: string, defaultValue?: OptionValue): OptionValue | undefined {
    const v = this.runtime.config.get(this.host, name);
    return v === undefined ? defaultValue : v;
  }

  private optionLog: Logger = (level, fmt, ...args) => this.log(level, fmt, ...args);

  getOptionString(name: string, defaultValue?: string): string | undefined {
    return toOptionString(name, this.getOption(name, defaultValue), this.optionLog);
  }

  getOptionNumber(name: string, defaultValue?: number): number | undefined {
    return toOptionNumber(name, this.getOption(name, defaultValue), this.optionLog);
  }

  getOptionBoolean(name: string, defaultValue?: boolean): boolean | undefined {
    return toOptionBoolean(name, this.getOption(name, defaultValue), this.optionLog);
  }

  getOptionArray(name: string, defaultValue?: OptionValue[]): OptionValue[] | undefined {
    return toOptionArray(this.getOption(name, defaultValue));
  }

  getOptionSet(name: string, defaultValue?: OptionValue[]): Set<OptionValue> | undefined {
    return toOptionSet(this.getOption(name, defaultValue));
  }

  getOptionInheritedSet(name: string, defaultValue?: OptionValue[]): Set<OptionValue> | undefined {
    const global = toOptionSet(this.runtime.config.getRaw("*", name));
    const own = this.host === "*" ? undefined : toOptionSet(this.runtime.config.getRaw(this.host, name));
    const merged = unionSets(own, global);
    return merged ?? toOptionSet(defaultValue);
  }

  getOptionPath(name: string, defaultValue?: string, parent?: string): string | undefined {
    const value = this.getOptionString(name, defaultValue);
    const paths = this.runtime.paths as unknown as Record<string, string>;
    return resolveOptionPath(value, parent ?? dirname(this.path), paths);
  }

  // --- storage, shared state, logging, HTTP, timers ---

  openStore(name?: string, type?: any): Promise<any> {
    const storeType: StoreType = type ?? "keyval";
    if (storeType !== "keyval" && storeType !== "map") {
      throw new TypeError(`openStore: unsupported store type ${JSON.stringify(type)} (keyval or map)`);
    }
    return this.runtime.storage.open(this.host, name ?? this.name, storeType) as Promise<Store>;
  }

  shared<T extends object = Record<string, any>>(path: string): T {
    if (typeof path !== "string" || path === "") throw new TypeError("shared: path must be a non-empty string");
    let full: string;
    if (path.startsWith("/")) full = path;
    else {
      const parts = path.split("/");
      if (parts.length === 1) full = `/${this.host}/${this.name}/${path}`;
      else if (parts.length === 2) full = `/${this.host}/${path}`;
      else full = `/${path}`;
    }
    return this.runtime.shared(full) as T;
  }

  log(level: LogLevel, format: string, ...args: unknown[]): void {
    this.logger(level, format, ...args);
  }

  httpUrl(app?: string, defaultPath?: string): string {
    const provider = this.runtime.shared("/*/http/url") as {
      url?: (app: string, defaultPath: string | undefined, host: string) => string;
    };
    const appName = app ?? this.name.replace(/^http_/, "");
    if (typeof provider.url !== "function") return "http://disabled.invalid/";
    return provider.url(appName, defaultPath, this.host);
  }

  addTimer(seconds: number, fn: () => number | void | Promise<number | void>): () => void {
    if (typeof seconds !== "number" || !(seconds >= 0)) throw new TypeError("addTimer: delay must be a number of seconds >= 0");
    let timer: NodeJS.Timeout;
    const schedule = (s: number) => {
      timer = setTimeout(async () => {
        this.record.timers.delete(timer);
        let next: number | void;
        try {
          next = await fn();
        } catch (err) {
          this.log("error", "Error in timer: %s", err instanceof Error ? err.stack ?? err.message : err);
          return;
        }
        if (typeof next === "number" && next >= 0 && this.record.loaded) schedule(next);
      }, s * 1000);
      // Timers never keep a process alive on their own (a CLI command must exit).
      timer.unref();
      this.record.timers.add(timer);
    };
    schedule(seconds);
    return () => {
      clearTimeout(timer);
      this.record.timers.delete(timer);
    };
  }
}
