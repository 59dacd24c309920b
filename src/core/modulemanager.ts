/**
 * Loading and unloading modules per host (Prosody's core/modulemanager.lua do_load_module).
 * Expected failures (already loaded, unknown host, not found) reject with a ModuleLoadError
 * carrying Prosody's error code.
 */
import { ModuleImpl } from "./module.js";
import { findPlugin, PluginNotFoundError } from "./plugin-loader.js";
import { checkTrustedPath, UntrustedPathError } from "./trusted-paths.js";
import type { Runtime } from "./runtime.js";
import type { PluginFile } from "./types.js";
import { createLogger } from "./logger.js";

export type LoadErrorCode =
  | "insufficient-parameters"
  | "unknown-host"
  | "module-already-loaded"
  | "global-module-already-loaded"
  | "module-not-found"
  | "module-init-failed";

export class ModuleLoadError extends Error {
  override name = "ModuleLoadError";
  constructor(
    readonly code: LoadErrorCode,
    message?: string,
    options?: { cause?: unknown },
  ) {
    super(message ?? code, options);
  }
}

const log = createLogger("modulemanager");

export class ModuleManager {
  /** host → name → instance ("*" holds global modules). */
  private readonly map = new Map<string, Map<string, ModuleImpl>>();
  private readonly loading = new Map<string, Promise<ModuleImpl>>();
  /** Load order, for shutdown in reverse. */
  private readonly order: ModuleImpl[] = [];
  private readonly files = new Map<string, Promise<{ file: PluginFile; path: string }>>();

  constructor(private readonly runtime: Runtime) {}

  get(host: string, name: string): ModuleImpl | undefined {
    return this.map.get(host)?.get(name);
  }

  isLoaded(host: string, name: string): boolean {
    return this.get(host, name) !== undefined;
  }

  loadedOn(host: string): ModuleImpl[] {
    return [...(this.map.get(host)?.values() ?? [])];
  }

  all(): ModuleImpl[] {
    return [...this.order];
  }

  hostItems(host: string, key: string): unknown[] {
    return this.hostItemsWithSource(host, key).map((x) => x.item);
  }

  hostItemsWithSource(host: string, key: string): Array<{ source: ModuleImpl; item: unknown }> {
    const out: Array<{ source: ModuleImpl; item: unknown }> = [];
    for (const mod of this.loadedOn(host)) {
      for (const item of mod.items.get(key) ?? []) out.push({ source: mod, item });
    }
    return out;
  }

  private register(host: string, mod: ModuleImpl): void {
    let m = this.map.get(host);
    if (!m) this.map.set(host, (m = new Map()));
    m.set(mod.name, mod);
    this.order.push(mod);
  }

  private deregister(host: string, mod: ModuleImpl): void {
    const m = this.map.get(host);
    if (m?.get(mod.name) === mod) m.delete(mod.name);
    const i = this.order.indexOf(mod);
    if (i >= 0) this.order.splice(i, 1);
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

  private importFile(name: string): Promise<{ file: PluginFile; path: string }> {
    let p = this.files.get(name);
    if (!p) {
      const found = findPlugin(name, this.runtime.pluginPaths(), this.runtime.paths.plugins);
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

  private async doLoad(host: string, name: string): Promise<ModuleImpl> {
    if (host !== "*" && !this.runtime.hasHost(host)) throw new ModuleLoadError("unknown-host", "unknown-host");
    if (this.get(host, name)) throw new ModuleLoadError("module-already-loaded");

    // A module that made itself global serves hosts through addHost; one merely loaded on the
    // "*" pseudo-host (a prosodyctl command, a store opened there) does not stop a per-host load.
    const globalMod = this.get("*", name);
    if (globalMod && host !== "*" && globalMod.explicitGlobal) {
      if (globalMod.addHost) return this.attachHost(globalMod, host);
      throw new ModuleLoadError("global-module-already-loaded");
    }

    let file: PluginFile;
    let path: string;
    try {
      ({ file, path } = await this.importFile(name));
    } catch (err) {
      if (err instanceof PluginNotFoundError) throw new ModuleLoadError("module-not-found", err.message, { cause: err });
      const msg = err instanceof Error ? err.message : String(err);
      log("error", "Unable to load module '%s': %s", name, msg);
      throw new ModuleLoadError("module-init-failed", msg, { cause: err });
    }
    if (typeof file.default !== "function" && typeof file.command !== "function") {
      const msg = `${path} exports neither a default module function nor a command`;
      log("error", "Unable to load module '%s': %s", name, msg);
      throw new ModuleLoadError("module-init-failed", msg);
    }

    const mod = new ModuleImpl(this.runtime, { name, host, path });
    if (typeof file.command === "function") mod.command = file.command;
    this.register(host, mod);
    try {
      if (typeof file.default === "function") await file.default(mod);
    } catch (err) {
      await this.teardown(mod, host);
      const msg = err instanceof Error ? err.message : String(err);
      log("error", "Error initializing module '%s' on '%s': %s", name, host, msg);
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
      this.deregister(host, mod);
      if (this.get("*", name)) throw new ModuleLoadError("global-module-already-loaded");
      this.register("*", mod);
      this.runtime.globalEvents.fire("module-loaded", { module: name, host: "*" });
      if (mod.addHost) return this.attachHost(mod, host);
      return mod;
    }
    this.runtime.eventsFor(host).fire("module-loaded", { module: name, host: mod.host });
    return mod;
  }

  /** A per-host wrapper of a global module, handed to its addHost. */
  private async attachHost(globalMod: ModuleImpl, host: string): Promise<ModuleImpl> {
    if (this.get(host, globalMod.name)) return this.get(host, globalMod.name)!;
    const wrapper = new ModuleImpl(this.runtime, {
      name: globalMod.name,
      host,
      path: globalMod.path,
      exports: globalMod.exports,
      global: false,
    });
    wrapper.command = globalMod.command;
    this.register(host, wrapper);
    let ok: unknown;
    try {
      ok = await globalMod.addHost!(wrapper);
    } catch (err) {
      await this.teardown(wrapper, host);
      const msg = err instanceof Error ? err.message : String(err);
      log("error", "Error initializing module '%s' on '%s': %s", globalMod.name, host, msg);
      throw new ModuleLoadError("module-init-failed", msg, { cause: err });
    }
    if (ok === false) {
      await this.teardown(wrapper, host);
      throw new ModuleLoadError("module-init-failed", `mod_${globalMod.name} refused host ${host}`);
    }
    this.runtime.eventsFor(host).fire("module-loaded", { module: globalMod.name, host });
    return wrapper;
  }

  /** Releases every hook, item and timer of `mod` and removes it from the map. */
  private async teardown(mod: ModuleImpl, host: string): Promise<void> {
    if (!mod.loaded) return;
    // Marked first: a dependent unloading in reaction must not tear this down twice.
    mod.loaded = false;
    if (typeof mod.unload === "function") {
      try {
        await mod.unload();
      } catch (err) {
        mod.log("warn", "Non-fatal error unloading module '%s' on '%s': %s", mod.name, host, err);
      }
    }
    for (const h of [...mod.hooks].reverse()) h.bus.unhook(h.event, h.handler);
    mod.hooks.length = 0;
    for (const [key, list] of mod.items) {
      for (const item of [...list].reverse()) {
        list.splice(list.lastIndexOf(item), 1);
        this.runtime.eventsFor(host).fire(`item-removed/${key}`, { source: mod, item });
      }
    }
    mod.items.clear();
    for (const t of mod.timers) clearTimeout(t);
    mod.timers.clear();
    this.deregister(host, mod);
  }

  async unload(host: string, name: string): Promise<boolean> {
    const mod = this.get(host, name);
    if (!mod || !mod.loaded) return false;
    // Unloading a global module detaches it from every host first.
    if (host === "*") {
      for (const [h, m] of this.map) {
        if (h !== "*" && m.get(name)?.global === false) await this.unload(h, name);
      }
    }
    await this.teardown(mod, host);
    this.runtime.eventsFor(host).fire("module-unloaded", { module: name, host });
    return true;
  }

  /** Unloads everything: HTTP first (so in-flight requests finish), storage drivers last. */
  async unloadAll(): Promise<void> {
    const rank = (m: ModuleImpl) => (m.name === "http" ? 0 : m.name.startsWith("storage_") ? 2 : 1);
    const mods = [...this.order].reverse().sort((a, b) => rank(a) - rank(b));
    for (const m of mods) {
      if (!m.loaded) continue;
      // Global module wrappers go with their global instance.
      const host = m.global === true ? "*" : m.host;
      await this.unload(host, m.name).catch((err) => log("error", "Unloading %s: %s", m.name, err));
    }
  }
}
