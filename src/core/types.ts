/**
 * The public module API: what a plugin receives as `module`, modelled on Prosody's
 * core/moduleapi.lua in TypeScript idiom (see README "Writing plugins" for the mapping).
 */
import type { HttpApp } from "../http/types.js";
import type { Store, StorageProvider, StoreType } from "../storage/types.js";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type EventHandler<T = any> = (data: T) => unknown;
/** Returned by hook(): calling it removes the handler. */
export type Unhook = () => void;

/** Option values as they come out of prosody.cfg.lua (tables: arrays or objects). */
export type OptionValue = string | number | boolean | OptionValue[] | { [key: string]: OptionValue };

export interface ItemEvent<T = any> {
  source: Module;
  item: T;
}

/**
 * What `module.depends(name)` resolves to, by module name. Empty here: a plugin that exports an
 * API adds its entry by declaration merging, and its dependents get the type from "prosody-ts"
 * without importing the plugin's files.
 * @example
 * declare module "prosody-ts" {
 *   interface ModuleExports { invites: InvitesApi }
 * }
 * const invites = await module.depends("invites"); // InvitesApi
 */
export interface ModuleExports {}

/**
 * The item each kind of `module.provides(kind, item)` takes; other kinds take any object.
 * Plugins add kinds by declaration merging, as for ModuleExports.
 */
export interface ProvidedItems {
  /** Routes served by mod_http under `/<default_path or module name>` (the module must depend on "http"). */
  http: HttpApp;
  storage: StorageProvider;
}

/** What a plugin file exports. Only `default` (the module body) is required. */
export interface PluginFile {
  default?: (module: Module) => unknown;
  /** prosodyctl mod_<name> ARGS: a number is the exit code, a string is printed. */
  command?: (args: string[], ctx: CommandContext) => unknown;
}

/**
 * A command of `prosodyctl shell SECTION NAME ARGS…` (Prosody 13's shell-command items), added with
 * `module.addItem("shell-command", cmd)` by a module loaded in the server; run by the server for
 * prosodyctl through its admin socket. With `host_selector`, the host is the one named by that
 * argument (a JID's or a host's domain) and the instance added on that host runs.
 */
export interface ShellCommand {
  section: string;
  section_desc?: string;
  name: string;
  desc: string;
  /** The positional arguments, in order. */
  args: Array<{ name: string }>;
  /** Name of the argument that selects the host. */
  host_selector?: string;
  /** Options (`--name value`, `--name`), named with "_" for "-": as Prosody's util.argparse. */
  flags?: {
    /** Flags without a value (`--name`; `--name=value` also works). */
    kv_params?: Record<string, boolean>;
    /** Flags taking one value. */
    value_params?: Record<string, boolean>;
    /** Flags taking a value, repeatable: an array. */
    array_params?: Record<string, boolean>;
  };
  /**
   * Runs the command: `[true, message]` prints "OK: message", `[false | undefined, message]` prints
   * "Error: message" on stderr (exit 1). `args` are the positional arguments (undefined when missing).
   */
  handler(session: ShellSession, args: Array<string | undefined>, opts: Record<string, unknown>): Promise<[boolean | undefined, string?]> | [boolean | undefined, string?];
}

export interface ShellSession {
  /** Prints a line: the values joined with tabs. */
  print(...values: unknown[]): void;
  /** Columns available for a table (the terminal's width less 2; 130 without one). */
  width: number;
}

export interface CommandContext {
  /** The module instance, loaded on the global pseudo-host "*". */
  module: Module;
  /** Write a line to the command's standard output. */
  print(...text: unknown[]): void;
}

export interface Paths {
  /** Data directory (data_path), absolute. */
  data: string;
  /** Directory of the config file (or cwd for the embedded default). */
  config: string;
  /** Root of this package. */
  source: string;
  /** Bundled plugins directory. */
  plugins: string;
}

/** Process-wide state a module may read (Prosody's global `prosody` table). */
export interface ServerContext {
  readonly processType: "server" | "prosodyctl";
  readonly paths: Paths;
  /** Names of configured hosts (VirtualHosts and Components), incl. disabled ones. */
  hostNames(): string[];
  hostType(host: string): "local" | "component" | "global" | undefined;
  /** Whether the host is enabled and activated (server) / configured (prosodyctl). */
  isHostActive(host: string): boolean;
  /**
   * True while the server starts (its hosts and their modules are being loaded); the global event
   * "server-started" ends it. Prosody serves nothing before its modules are loaded; mod_http holds
   * requests until then.
   */
  readonly startingUp: boolean;
  /** The statistics bus (src/core/stats.ts): observations and gauges, for metrics exporters. */
  readonly stats: StatsBus;
}

/** Labels of an observation or gauge: a few bounded values (a route, a status, a driver). */
export type StatsLabels = Readonly<Record<string, string>>;

/** Told of every observation; must not throw (a throw is ignored) and must be quick. */
export type StatsListener = (name: string, value: number, labels: StatsLabels) => void;

/** A gauge's value as read at collection time. */
export interface StatsGauge {
  name: string;
  labels: StatsLabels;
  value: number;
}

/**
 * Where the core and plugins report figures (`module.server.stats`) and exporters read them. With
 * no listener, `observe` does nothing. Names the core reports: `http_request` (seconds; labels
 * `method`, `route` = the matched route key or "none", `status`), `storage_commit` (seconds;
 * `driver`, `ok`); gauge `storage_journal_bytes` (`database`) for SQLite on sql.js.
 */
export interface StatsBus {
  /** Whether anyone listens. */
  readonly active: boolean;
  observe(name: string, value: number, labels?: StatsLabels): void;
  /** Listens to every observation; returns the remover. */
  listen(fn: StatsListener): () => void;
  /** Registers a value read at collection time; returns the remover. Same name + labels: the newest registration is read. */
  gauge(name: string, labels: StatsLabels, read: () => number | undefined): () => void;
  readGauges(): StatsGauge[];
}

export interface Module {
  /** Module name without the `mod_` prefix. */
  readonly name: string;
  /** Host name, or "*" for a global module. */
  readonly host: string;
  /** undefined for per-host modules, true after setGlobal(), false in an addHost wrapper. */
  readonly global: boolean | undefined;
  /** File the module was loaded from. */
  readonly path: string;
  readonly server: ServerContext;
  /** What `depends(name)` returns to other modules (Prosody: the module environment). */
  exports: Record<string, any>;

  /** Optional lifecycle functions the body may set (Prosody: module.load / unload / add_host / command). */
  load?: () => unknown;
  /** Prosody's `module.unload`, for ported modules; our plugins use onUnload (several may be registered). */
  unload?: () => unknown;
  addHost?: (hostModule: Module) => unknown;
  command?: (args: string[], ctx: CommandContext) => unknown;

  /**
   * Runs `fn` (may be async) when the module unloads: after `module.unload`, last registered
   * first, before the hooks, items and timers the module registered are released (those need no
   * cleanup of their own). For resources the API cannot track: a server, a file handle.
   */
  onUnload(fn: () => unknown): void;

  // --- events ---
  hook<T = any>(event: string, handler: EventHandler<T>, priority?: number): Unhook;
  hookGlobal<T = any>(event: string, handler: EventHandler<T>, priority?: number): Unhook;
  unhook(event: string, handler: EventHandler): void;
  fireEvent<T = any>(event: string, data?: T): unknown;
  fireGlobalEvent<T = any>(event: string, data?: T): unknown;
  /**
   * fireEvent for handlers that may return promises: each is awaited, in priority order, before
   * the next runs; the first result other than `undefined` stops the chain and resolves the
   * promise; a handler's rejection stops the chain and rejects it.
   * @example
   * const event = { username, host: module.host, allowed: true };
   * await module.fireEventAsync("user-registering", event); // a handler may await a lookup, then veto
   * if (event.allowed === false) return refuse(event.reason);
   */
  fireEventAsync<T = any>(event: string, data?: T): Promise<unknown>;
  fireGlobalEventAsync<T = any>(event: string, data?: T): Promise<unknown>;

  // --- modules ---
  /** Another module's exports, loading it on this host first if needed (typed by ModuleExports). */
  depends<K extends keyof ModuleExports>(name: K): Promise<ModuleExports[K]>;
  depends<T = Record<string, any>>(name: string): Promise<T>;
  setGlobal(): void;
  /** Proxy of this module acting for another host (`"*"` when omitted). */
  context(host?: string): Module;

  // --- items ---
  /** Adds `item` as a `<kind>-provider` item (typed by ProvidedItems for known kinds). */
  provides<K extends string>(kind: K, item?: K extends keyof ProvidedItems ? ProvidedItems[K] : Record<string, any>): void;
  addItem(key: string, value: unknown): void;
  removeItem(key: string, value: unknown): void;
  getHostItems<T = any>(key: string): T[];
  handleItems<T = any>(
    key: string,
    added: (event: ItemEvent<T>) => void,
    removed: (event: ItemEvent<T>) => void,
    existing?: boolean,
  ): void;

  // --- options (host value, else global value, else default) ---
  getOption(name: string, defaultValue?: OptionValue): OptionValue | undefined;
  getOptionString(name: string, defaultValue?: string): string | undefined;
  getOptionNumber(name: string, defaultValue?: number): number | undefined;
  getOptionBoolean(name: string, defaultValue?: boolean): boolean | undefined;
  getOptionArray(name: string, defaultValue?: OptionValue[]): OptionValue[] | undefined;
  getOptionSet(name: string, defaultValue?: OptionValue[]): Set<OptionValue> | undefined;
  getOptionInheritedSet(name: string, defaultValue?: OptionValue[]): Set<OptionValue> | undefined;
  getOptionPath(name: string, defaultValue?: string, parent?: string): string | undefined;

  // --- storage, shared state, logging, HTTP, timers ---
  openStore(name?: string, type?: "keyval"): Promise<import("../storage/types.js").KeyvalStore>;
  openStore(name: string | undefined, type: "map"): Promise<import("../storage/types.js").MapStore>;
  openStore(name?: string, type?: StoreType): Promise<Store>;
  shared<T extends object = Record<string, any>>(path: string): T;
  log(level: LogLevel, format: string, ...args: unknown[]): void;
  httpUrl(app?: string, defaultPath?: string): string;
  /** Run fn after `seconds`; if it returns a number, run again after that many seconds. */
  addTimer(seconds: number, fn: () => number | void | Promise<number | void>): () => void;
}
