/**
 * Loading and unloading modules per host (Prosody's core/modulemanager.lua do_load_module).
 * Expected failures (already loaded, unknown host, not found) reject with a ModuleLoadError
 * carrying Prosody's error code.
 */
import { findStartupError } from "./startup-error.js";
import { ModuleLoadError } from "./load-error.js";
import { createLogger } from "./logger.js";
import { ModuleImpl, type ModuleDirectory, type ModuleRuntime } from "./module.js";
import { ModuleRecord } from "./module-record.js";
import { toOptionSet, unionSets } from "./options.js";
import { findPlugin, PluginNotFoundError, type BuiltinModules } from "./plugin-loader.js";
import { checkTrustedPath, UntrustedPathError, type TrustPolicy } from "./trusted-paths.js";
import type { Module, PluginFile } from "./types.js";

export { ModuleLoadError, type LoadErrorCode } from "./load-error.js";

/** What the module manager needs from its process (the Runtime implements it). */
export interface ModuleManagerRuntime extends ModuleRuntime {
  readonly trust: TrustPolicy | undefined;
  readonly builtins: BuiltinModules;
  hasHost(host: string): boolean;
  pluginPaths(): string[];
}

/** A loaded module: the object the plugin holds, and the record of what it registered. */
interface Loaded {
  module: ModuleImpl;
  record: ModuleRecord;
}

const log = createLogger("modulemanager");

export class ModuleManager implements ModuleDirectory {
  /** host → name → loaded module ("*" holds global modules). */
  private readonly map = new Map<string, Map<string, Loaded>>();
  private readonly loading = new Map<string, Promise<ModuleImpl>>();
  /** Load order, for shutdown in reverse. */
  private readonly order: Loaded[] = [];
  private readonly files = new Map<string, Promise<{ file: PluginFile; path: string }>>();
  /** Modules made for a prosodyctl command only (see forCommand); released by unloadAll. */
  private readonly commandOnly: Loaded[] = [];

  constructor(private readonly runtime: ModuleManagerRuntime) {}

  get(host: string, name: string): ModuleImpl | undefined {
    return this.map.get(host)?.get(name)?.module;
  }

  isLoaded(host: string, name: string): boolean {
    return this.get(host, name) !== undefined;
  }

  loadedOn(host: string): ModuleImpl[] {
    return [...(this.map.get(host)?.values() ?? [])].map((l) => l.module);
  }

  all(): ModuleImpl[] {
    return this.order.map((l) => l.module);
  }

  hostItems(host: string, key: string): unknown[] {
    return this.hostItemsWithSource(host, key).map((x) => x.item);
  }

  hostItemsWithSource(host: string, key: string): Array<{ source: ModuleImpl; item: unknown }> {
    const out: Array<{ source: ModuleImpl; item: unknown }> = [];
    for (const { module, record } of this.map.get(host)?.values() ?? []) {
      for (const item of record.items.get(key) ?? []) out.push({ source: module, item });
    }
    return out;
  }

  private register(host: string, loaded: Loaded): void {
    let m = this.map.get(host);
    if (!m) this.map.set(host, (m = new Map()));
    m.set(loaded.module.name, loaded);
    this.order.push(loaded);
  }

  private deregister(host: string, loaded: Loaded): void {
    const m = this.map.get(host);
    if (m?.get(loaded.module.name) === loaded) m.delete(loaded.module.name);
    const i = this.order.indexOf(loaded);
    if (i >= 0) this.order.splice(i, 1);
  }

  private create(init: ConstructorParameters<typeof ModuleImpl>[2]): Loaded {
    const record = new ModuleRecord();
    return { module: new ModuleImpl(this.runtime, record, init), record };
  }

  /** Loads module `name` on `host` ("*" for global). Concurrent loads of the same pair share one promise. */
  load(host: string, name: string): Promise<ModuleImpl> {
    if (!host || !name) return Promise.reject(new ModuleLoadError("insufficient-parameters"));
    const key = `${host}\0${name}`;
    const pending = this.loading.get(key);
    if (pending) return pending;
    const p = this.doLoad(host, name).finally(() => this.loading.delete(key));
    this.loading.set(key, p);
    return p;
  }

  /**
   * `module.depends(name)` (Prosody's module:depends): the dependency on the requester's host,
   * loaded there if needed, or its global instance; a dependency going away takes the requester
   * with it, as in Prosody.
   */
  async depend(requester: Module, record: ModuleRecord, name: string): Promise<Record<string, any>> {
    const config = this.runtime.config;
    const disabled = unionSets(toOptionSet(config.getRaw(requester.host, "modules_disabled")), toOptionSet(config.getRaw("*", "modules_disabled")));
    if (disabled?.has(name)) throw new Error(`Dependency on disabled module mod_${name}`);

    if (!record.followsDependencies) {
      record.followsDependencies = true;
      requester.hook("module-unloaded", (event: { module: string; host: string }) => {
        if (record.loaded && record.dependencies.has(event.module) && event.module !== requester.name) {
          void this.unload(requester.host, requester.name).catch(() => undefined);
        }
      });
    }

    const host = requester.host;
    const onStar = this.map.get("*")?.get(name);
    let instance = this.map.get(host)?.get(name) ?? (onStar && (onStar.record.explicitGlobal || host === "*") ? onStar : undefined);
    let exports = instance?.module.exports;
    if (instance && instance.module.global && !requester.global && instance.module.addHost && host !== "*") {
      exports = (await this.load(host, name).catch(() => this.get(host, name)!)).exports;
    }
    if (!instance) {
      try {
        exports = (await this.load(host, name)).exports;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        throw new Error(`Unable to load required module, mod_${name}: ${msg.replace(/-/g, " ")}`, { cause: err });
      }
    }
    record.dependencies.add(name);
    return exports!;
  }

  private importFile(name: string): Promise<{ file: PluginFile; path: string }> {
    let p = this.files.get(name);
    if (!p) {
      const found = findPlugin(name, this.runtime.pluginPaths(), this.runtime.paths.plugins, this.runtime.builtins);
      const trust = this.runtime.trust;
      const problem = trust && found.files ? checkTrustedPath(found.files, trust, { tree: true }) : undefined;
      p = problem
        ? Promise.reject(new UntrustedPathError(`Refusing to load mod_${name} (${found.files}): ${problem}`))
        : found.import().then((file) => ({ file, path: found.path }));
      // A failed import is not cached, so a fixed file can be tried again.
      p.catch(() => this.files.delete(name));
      this.files.set(name, p);
    }
    return p;
  }

  /** The plugin file of `name`, or a ModuleLoadError with Prosody's code. */
  private async pluginFile(name: string): Promise<{ file: PluginFile; path: string }> {
    let found: { file: PluginFile; path: string };
    try {
      found = await this.importFile(name);
    } catch (err) {
      if (err instanceof PluginNotFoundError) throw new ModuleLoadError("module-not-found", err.message, { cause: err });
      const msg = err instanceof Error ? err.message : String(err);
      log("error", "Unable to load module '%s': %s", name, msg);
      throw new ModuleLoadError("module-init-failed", msg, { cause: err });
    }
    if (typeof found.file.default !== "function" && typeof found.file.command !== "function") {
      const msg = `${found.path} exports neither a default module function nor a command`;
      log("error", "Unable to load module '%s': %s", name, msg);
      throw new ModuleLoadError("module-init-failed", msg);
    }
    return found;
  }

  /**
   * The module `prosodyctl mod_<name> …` runs. A plugin file that exports `command` gets a module
   * for the "*" pseudo-host whose body does not run: the body is what the module does on a host,
   * the command what it does in prosodyctl (house style: setup vs commands), so no body needs an
   * `if (module.host === "*") return` guard. That module is not registered as loaded on "*" (a
   * `depends()` from elsewhere gets a real load). A file without that export is loaded on "*" as
   * Prosody does, body included: a ported Lua module sets `module.command` there.
   */
  async forCommand(name: string): Promise<ModuleImpl> {
    if (!name) throw new ModuleLoadError("insufficient-parameters");
    const { file, path } = await this.pluginFile(name);
    if (typeof file.command !== "function") return this.load("*", name);
    const loaded = this.create({ name, host: "*", path, global: true });
    loaded.module.command = file.command;
    this.commandOnly.push(loaded);
    return loaded.module;
  }

  private async doLoad(host: string, name: string): Promise<ModuleImpl> {
    if (host !== "*" && !this.runtime.hasHost(host)) throw new ModuleLoadError("unknown-host", "unknown-host");
    if (this.get(host, name)) throw new ModuleLoadError("module-already-loaded");

    // A module that made itself global serves hosts through addHost; one merely loaded on the
    // "*" pseudo-host (a prosodyctl command, a store opened there) does not stop a per-host load.
    const globalMod = this.map.get("*")?.get(name);
    if (globalMod && host !== "*" && globalMod.record.explicitGlobal) {
      if (globalMod.module.addHost) return this.attachHost(globalMod.module, host);
      throw new ModuleLoadError("global-module-already-loaded");
    }

    const { file, path } = await this.pluginFile(name);
    const loaded = this.create({ name, host, path });
    const mod = loaded.module;
    if (typeof file.command === "function") mod.command = file.command;
    this.register(host, loaded);
    try {
      if (typeof file.default === "function") await file.default(mod);
    } catch (err) {
      await this.teardown(loaded, host);
      const msg = err instanceof Error ? err.message : String(err);
      // A StartupError stops the start and is reported once, by whoever started it.
      log(findStartupError(err) ? "debug" : "error", "Error initializing module '%s' on '%s': %s", name, host, msg);
      if (err instanceof Error && err.stack) log("debug", "%s", err.stack);
      throw new ModuleLoadError("module-init-failed", msg, { cause: err });
    }
    if (host === "*") mod.global = true;
    if (typeof mod.load === "function") {
      try {
        await mod.load();
      } catch (err) {
        mod.log("warn", "Error while loading module: %s", err);
      }
    }

    // The body called setGlobal(): it becomes the global instance, then attaches to the host.
    if (mod.host === "*" && host !== "*") {
      this.deregister(host, loaded);
      if (this.get("*", name)) throw new ModuleLoadError("global-module-already-loaded");
      this.register("*", loaded);
      this.runtime.globalEvents.fire("module-loaded", { module: name, host: "*" });
      if (mod.addHost) return this.attachHost(mod, host);
      return mod;
    }
    this.runtime.eventsFor(host).fire("module-loaded", { module: name, host: mod.host });
    if (!this.runtime.startingUp) this.reportUnservedItems(mod);
    return mod;
  }

  /** A per-host wrapper of a global module, handed to its addHost. */
  private async attachHost(globalMod: ModuleImpl, host: string): Promise<ModuleImpl> {
    const existing = this.get(host, globalMod.name);
    if (existing) return existing;
    const loaded = this.create({
      name: globalMod.name,
      host,
      path: globalMod.path,
      exports: globalMod.exports,
      global: false,
    });
    const wrapper = loaded.module;
    wrapper.command = globalMod.command;
    this.register(host, loaded);
    let ok: unknown;
    try {
      ok = await globalMod.addHost!(wrapper);
    } catch (err) {
      await this.teardown(loaded, host);
      const msg = err instanceof Error ? err.message : String(err);
      log("error", "Error initializing module '%s' on '%s': %s", globalMod.name, host, msg);
      throw new ModuleLoadError("module-init-failed", msg, { cause: err });
    }
    if (ok === false) {
      await this.teardown(loaded, host);
      throw new ModuleLoadError("module-init-failed", `mod_${globalMod.name} refused host ${host}`);
    }
    this.runtime.eventsFor(host).fire("module-loaded", { module: globalMod.name, host });
    return wrapper;
  }

  /**
   * Releases everything `loaded` registered and removes it from the map: `module.unload`, then
   * its onUnload functions (last first), hooks, items (each `item-removed`), timers.
   */
  private async teardown(loaded: Loaded, host: string): Promise<void> {
    const { module: mod, record } = loaded;
    if (!record.loaded) return;
    // Marked first: a dependent unloading in reaction must not tear this down twice.
    record.loaded = false;
    const cleanups = [mod.unload, ...[...record.cleanups].reverse()];
    record.cleanups.length = 0;
    for (const fn of cleanups) {
      if (typeof fn !== "function") continue;
      try {
        await fn.call(mod);
      } catch (err) {
        mod.log("warn", "Non-fatal error unloading module '%s' on '%s': %s", mod.name, host, err);
      }
    }
    for (const h of [...record.hooks].reverse()) h.bus.unhook(h.event, h.handler);
    record.hooks.length = 0;
    for (const [key, list] of record.items) {
      for (const item of [...list].reverse()) {
        list.splice(list.lastIndexOf(item), 1);
        this.runtime.eventsFor(host).fire(`item-removed/${key}`, { source: mod, item });
      }
    }
    record.items.clear();
    for (const t of record.timers) clearTimeout(t);
    record.timers.clear();
    this.deregister(host, loaded);
  }

  async unload(host: string, name: string): Promise<boolean> {
    const loaded = this.map.get(host)?.get(name);
    if (!loaded || !loaded.record.loaded) return false;
    // Unloading a global module detaches it from every host first.
    if (host === "*") {
      for (const [h, m] of this.map) {
        if (h !== "*" && m.get(name)?.module.global === false) await this.unload(h, name);
      }
    }
    await this.teardown(loaded, host);
    this.runtime.eventsFor(host).fire("module-unloaded", { module: name, host });
    return true;
  }

  /**
   * Server only: warns about items that nothing will act on, because the one module that serves
   * their kind (mod_http for `http-provider`) is not loaded on their host. Prosody serves nothing
   * either, silently; the usual cause is a module that forgot `depends("http")`. Checked for every
   * module once start-up is over (one may provide before mod_http loads), and for each module
   * loaded later as it loads.
   */
  reportUnservedItems(only?: ModuleImpl): void {
    if (this.runtime.processType !== "server") return;
    const servers = this.servingBuiltins();
    for (const { module, record } of this.order) {
      if (only && module !== only) continue;
      for (const [key, items] of record.items) {
        const server = servers.get(key);
        if (!server || !items.length || this.get(module.host, server)) continue;
        const kind = key.replace(/-provider$/, "");
        module.log(
          "warn",
          'module.provides("%s", …) has no effect: mod_%s is not loaded on %s (add `await module.depends("%s")` to this module, or "%s" to modules_enabled)',
          kind,
          server,
          module.host,
          server,
          server,
        );
      }
    }
  }

  /**
   * How many provided items a loaded built-in acts on (an `http-provider` item on a host where
   * mod_http is loaded): 0 means the server has nothing to serve.
   */
  servedItemCount(): number {
    const servers = this.servingBuiltins();
    let count = 0;
    for (const { module, record } of this.order) {
      for (const [key, items] of record.items) {
        const server = servers.get(key);
        if (server && this.get(module.host, server)) count += items.length;
      }
    }
    return count;
  }

  /** Item kind → the built-in module that acts on it (`http-provider` → http). */
  private servingBuiltins(): Map<string, string> {
    const servers = new Map<string, string>();
    for (const [name, builtin] of Object.entries(this.runtime.builtins)) for (const key of builtin.serves ?? []) servers.set(key, name);
    return servers;
  }

  /** Unloads everything: HTTP first (so in-flight requests finish), storage drivers last. */
  async unloadAll(): Promise<void> {
    for (const loaded of this.commandOnly.splice(0).reverse()) await this.teardown(loaded, "*");
    const rank = (m: ModuleImpl) => (m.name === "http" ? 0 : m.name.startsWith("storage_") ? 2 : 1);
    const all = [...this.order].reverse().sort((a, b) => rank(a.module) - rank(b.module));
    for (const { module: m, record } of all) {
      if (!record.loaded) continue;
      // Global module wrappers go with their global instance.
      const host = m.global === true ? "*" : m.host;
      await this.unload(host, m.name).catch((err) => log("error", "Unloading %s: %s", m.name, err));
    }
  }
}
