/**
 * One process's state (Prosody's global `prosody` table): config, hosts and their event buses,
 * the module manager, the storage manager and the shared-table registry.
 *
 * In a server every activated host has its own bus; in prosodyctl every configured section is a
 * host and all share the global bus, as in Prosody.
 */
import { dirname, isAbsolute, resolve } from "node:path";
import type { Config } from "./config/index.js";
import { modulesForHost } from "./config/index.js";
import { EventBus } from "./events.js";
import { createLogger } from "./logger.js";
import { ModuleLoadError } from "./load-error.js";
import { findStartupError } from "./startup-error.js";
import { ModuleManager, type ModuleManagerRuntime } from "./modulemanager.js";
import { BUNDLED_PLUGINS_DIR, PACKAGE_ROOT } from "./paths.js";
import { prosodyHasModule, prosodyModuleDirs } from "./prosody-modules.js";
import type { BuiltinModules } from "./plugin-loader.js";
import { Stats } from "./stats.js";
import { StorageManager, type StorageManagerRuntime } from "./storagemanager.js";
import { UntrustedPathError, type TrustPolicy } from "./trusted-paths.js";
import type { Paths, ServerContext } from "./types.js";

const log = createLogger("general");

import { certificatesDirOf, dataDirOf, pluginPathsOf } from "./data-dir.js";

export { certificatesDirOf, dataDirOf, pluginPathsOf };

export interface RuntimeOptions {
  config: Config;
  processType: "server" | "prosodyctl";
  /** Working directory that relative paths resolve against (default process.cwd()). */
  cwd?: string;
  /**
   * Set when the process started as root: plugin files are loaded only from paths this policy
   * trusts (src/core/trusted-paths.ts).
   */
  trust?: TrustPolicy;
  /**
   * Modules compiled into the host (mod_http, mod_storage_*). Core does not import them: the
   * entry points pass src/modules' table (createRuntime in src/create-runtime.ts does).
   */
  builtins?: BuiltinModules;
  /**
   * Another runtime's storage, used instead of one of this runtime's own: its loaded drivers and
   * open stores (a command the running server runs for prosodyctl gets the server's). This
   * runtime's stop leaves them open.
   */
  storage?: StorageManager;
}

export class Runtime implements ServerContext, ModuleManagerRuntime, StorageManagerRuntime {
  readonly processType: "server" | "prosodyctl";
  /** Replaced only by replaceConfig (a reload); everything reads it per use. */
  private current: Config;
  readonly paths: Paths;
  readonly trust: TrustPolicy | undefined;
  readonly builtins: BuiltinModules;
  readonly globalEvents = new EventBus();
  readonly stats = new Stats();
  readonly modules: ModuleManager;
  readonly storage: StorageManager;
  private readonly buses = new Map<string, EventBus>();
  private readonly active = new Set<string>();
  private readonly sharedTables = new Map<string, object>();
  private readonly warnedMissing = new Set<string>();
  private stopping?: Promise<void>;
  startingUp = false;

  constructor(opts: RuntimeOptions) {
    this.processType = opts.processType;
    this.current = opts.config;
    this.trust = opts.trust;
    this.builtins = opts.builtins ?? {};
    const cwd = opts.cwd ?? process.cwd();
    this.paths = {
      data: dataDirOf(this.config, cwd),
      config: this.config.file ? dirname(resolve(cwd, this.config.file)) : cwd,
      source: PACKAGE_ROOT,
      plugins: BUNDLED_PLUGINS_DIR,
    };
    this.modules = new ModuleManager(this);
    this.storage = opts.storage ?? new StorageManager(this);
  }

  get config(): Config {
    return this.current;
  }

  /**
   * The one place the config changes (a SIGHUP reload, src/core/reload.ts): options read per
   * use see the new values at once. `paths` (data directory…) stay those of the start, as in
   * Prosody.
   */
  replaceConfig(config: Config): void {
    this.current = config;
  }

  // --- ServerContext ---

  hostNames(): string[] {
    return this.config.hosts();
  }

  hostType(host: string): "local" | "component" | "global" | undefined {
    if (host === "*") return "global";
    const section = this.config.sections.get(host);
    if (!section) return undefined;
    return section.kind === "Component" ? "component" : "local";
  }

  isHostActive(host: string): boolean {
    return this.processType === "prosodyctl" ? this.hasHost(host) : this.active.has(host);
  }

  // --- internals used by modules ---

  hasHost(host: string): boolean {
    return host !== "*" && this.config.sections.has(host);
  }

  eventsFor(host: string): EventBus {
    if (host === "*" || this.processType === "prosodyctl") return this.globalEvents;
    let bus = this.buses.get(host);
    if (!bus) this.buses.set(host, (bus = new EventBus()));
    return bus;
  }

  pluginPaths(): string[] {
    return pluginPathsOf(this.config, this.paths.data);
  }

  shared(path: string): object {
    let t = this.sharedTables.get(path);
    if (!t) this.sharedTables.set(path, (t = {}));
    return t;
  }

  // --- lifecycle ---

  /** Activates one host: fires host-activated and loads its modules. Missing modules are skipped. */
  async activateHost(host: string): Promise<void> {
    if (!this.hasHost(host)) throw new Error(`Unknown host: ${host}`);
    if (this.active.has(host)) return;
    this.active.add(host);
    this.eventsFor(host);
    this.globalEvents.fire("host-activated", host);
    await this.loadHostModules(host);
    log("info", "Activated host: %s", host);
  }

  /** Loads every module the config enables on an active host that is not loaded yet. */
  async loadHostModules(host: string): Promise<void> {
    const { modules, autoloaded } = modulesForHost(this.config, host);
    for (const name of modules) {
      if (this.modules.isLoaded(host, name)) continue;
      try {
        await this.modules.load(host, name);
      } catch (err) {
        // A plugin refused for its file permissions stops the start: never run without it silently.
        if (err instanceof ModuleLoadError && err.cause instanceof UntrustedPathError) throw err;
        const fatal = findStartupError(err);
        if (fatal) throw fatal;
        if (err instanceof ModuleLoadError && err.code === "module-not-found") {
          // Real configs list dozens of modules this host doesn't implement (roster, c2s, …).
          if (!autoloaded.has(name) && !this.warnedMissing.has(name)) {
            this.warnedMissing.add(name);
            // A stock config lists two dozen XMPP modules: one summary line at start-up (see
            // start()), each name at debug; a module added later still gets its own warning.
            log(this.startingUp ? "debug" : "warn", "Module '%s' is not implemented by this host, skipping it", name);
          }
        } else if (!(err instanceof ModuleLoadError && err.code === "module-already-loaded")) {
          log("error", "Failed to load module '%s' on %s: %s", name, host, err instanceof Error ? err.message : err);
        }
      }
    }
  }

  /** The hosts activated (server) and not deactivated since. */
  activeHosts(): string[] {
    return [...this.active];
  }

  /**
   * Deactivates a host (removed or disabled by a reload): its modules unload, last loaded first
   * (their routes and hooks go with them), then host-deactivated fires and its bus is dropped.
   */
  async deactivateHost(host: string): Promise<void> {
    if (!this.active.has(host)) return;
    for (const mod of this.modules.loadedOn(host).reverse()) {
      // One unloading may take its dependents with it: those report false here.
      await this.modules.unload(host, mod.name).catch((err) => log("error", "Unloading %s on %s: %s", mod.name, host, err));
    }
    this.active.delete(host);
    this.globalEvents.fire("host-deactivated", host);
    this.buses.delete(host);
    log("info", "Deactivated host: %s", host);
  }

  /** Server start-up: every enabled section becomes an active host. */
  async start(): Promise<void> {
    const hosts = this.config.hosts().filter((h) => this.config.isEnabled(h));
    if (!hosts.some((h) => this.hostType(h) === "local")) {
      throw new Error("No enabled VirtualHost entries found in the config file.");
    }
    this.globalEvents.fire("server-starting");
    this.startingUp = true;
    try {
      for (const host of hosts) await this.activateHost(host);
    } finally {
      this.startingUp = false;
    }
    if (this.warnedMissing.size > 0) {
      // Prosody's own modules are expected in its config; a name neither of us has is a typo.
      const dirs = prosodyModuleDirs(this.config, this.pluginPaths());
      const names = [...this.warnedMissing].filter((n) => prosodyHasModule(n, dirs));
      const unknown = [...this.warnedMissing].filter((n) => !names.includes(n));
      if (names.length) log("info", "Skipped %d module(s) this host does not implement (XMPP modules stay with Prosody): %s", names.length, names.join(", "));
      if (unknown.length) log("warn", "Enabled but neither this host nor Prosody has them (a typo?): %s", unknown.map((n) => `mod_${n}`).join(", "));
    }
    this.modules.reportUnservedItems();
    this.globalEvents.fire("server-started");
  }

  /** Stops cleanly: HTTP closes (in-flight requests finish), then modules unload, stores flush. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.globalEvents.fire("server-stopping", { reason: "shutdown" });
      await this.modules.unloadAll();
      this.globalEvents.fire("server-stopped");
    })();
    return this.stopping;
  }
}
