/**
 * Applying a reloaded config to a running server (SIGHUP, `prosodyctl reload`).
 *
 * Prosody 0.12 only swaps the config on reload: options read per use change, logging is
 * reloaded, certificates too; hosts and modules stay as they are until `prosodyctl shell`
 * (`host:activate`, `module:load`) or prosody-modules' mod_reload_modules acts. Here the running
 * set follows the file, so an edited config never half-applies:
 *
 * - a host added (or re-enabled) is activated, one removed (or `enabled = false`) deactivated;
 * - on a host kept, a module the old config enabled and the new one does not is unloaded, and
 *   every module the new config enables that is not loaded is loaded;
 * - modules named in `reload_modules` (mod_reload_modules' option, host then global) are
 *   reloaded, so those that read their options once at load see the new ones;
 * - options that only a restart applies (listening ports, paths, the user) are reported in one
 *   warning, as Prosody does not rebind either.
 *
 * A module's code is not re-imported (an ES module cannot be unloaded): code changes need a
 * restart.
 */
import type { Config } from "./config/index.js";
import { modulesForHost } from "./config/index.js";
import { createLogger } from "./logger.js";
import { toOptionSet } from "./options.js";
import type { Runtime } from "./runtime.js";
import { loadSqlStorage } from "./sql-startup.js";

const log = createLogger("general");

/** Global options read once at start (ports are bound, paths fixed, the user switched). */
export const RESTART_ONLY_OPTIONS = [
  "http_ports", "http_interfaces", "https_ports", "https_interfaces", "local_interfaces",
  "data_path", "pidfile", "prosody_ts_pidfile", "prosody_user", "prosody_group", "run_as_root",
  "prosody_ts_admin_socket",
];

export interface ReloadSummary {
  hostsAdded: string[];
  hostsRemoved: string[];
  /** "host:module" */
  loaded: string[];
  unloaded: string[];
  reloaded: string[];
  /** RESTART_ONLY_OPTIONS whose value changed. */
  restartOnly: string[];
}

/** Swaps `next` in and brings hosts and modules in line with it (see the header). */
export async function applyConfig(runtime: Runtime, next: Config): Promise<ReloadSummary> {
  const old = runtime.config;
  const summary: ReloadSummary = { hostsAdded: [], hostsRemoved: [], loaded: [], unloaded: [], reloaded: [], restartOnly: [] };
  for (const name of RESTART_ONLY_OPTIONS) {
    if (JSON.stringify(old.get("*", name)) !== JSON.stringify(next.get("*", name))) summary.restartOnly.push(name);
  }
  const before = new Set(runtime.activeHosts());
  const wanted = next.hosts().filter((h) => next.isEnabled(h));
  const oldModules = new Map([...before].map((h) => [h, new Set(modulesForHost(old, h).modules)]));
  const loadedBefore = new Map([...before].map((h) => [h, new Set(runtime.modules.loadedOn(h).map((m) => m.name))]));

  runtime.replaceConfig(next);

  for (const host of before) {
    if (wanted.includes(host)) continue;
    await runtime.deactivateHost(host);
    summary.hostsRemoved.push(host);
  }
  for (const host of wanted) {
    if (!before.has(host)) continue;
    const enabled = new Set(modulesForHost(next, host).modules);
    for (const name of oldModules.get(host)!) {
      if (enabled.has(name) || !runtime.modules.isLoaded(host, name)) continue;
      if (await unload(runtime, host, name)) summary.unloaded.push(`${host}:${name}`);
    }
    // Everything enabled gets loaded, including what an unload above took with it.
    await runtime.loadHostModules(host);
    const reload = toOptionSet(next.get(host, "reload_modules")) ?? new Set();
    for (const name of enabled) {
      const wasThere = loadedBefore.get(host)!.has(name);
      if (!runtime.modules.isLoaded(host, name)) continue;
      if (!wasThere) summary.loaded.push(`${host}:${name}`);
      else if (reload.has(name) && (await unload(runtime, host, name))) {
        await runtime.loadHostModules(host);
        summary.reloaded.push(`${host}:${name}`);
      }
    }
  }
  const added = wanted.filter((h) => !before.has(h));
  for (const host of added) {
    await runtime.activateHost(host);
    summary.hostsAdded.push(host);
  }
  // As at start: storage_sql on the new hosts now (a failure is logged; it loads on first use).
  await loadSqlStorage(runtime, added).catch((err) => log("error", "Storage of the added hosts: %s", err instanceof Error ? err.message : err));
  return summary;
}

/** One line for the log: what the reload changed. */
export function describeSummary(s: ReloadSummary): string {
  const parts: string[] = [];
  const list = (label: string, items: string[]) => items.length && parts.push(`${label} ${items.join(", ")}`);
  list("hosts activated:", s.hostsAdded);
  list("hosts deactivated:", s.hostsRemoved);
  list("modules loaded:", s.loaded);
  list("modules unloaded:", s.unloaded);
  list("modules reloaded:", s.reloaded);
  return parts.length ? parts.join("; ") : "no host or module changed";
}

/**
 * Runs `task` one at a time: a call while it runs queues one more run, and every further call
 * until that run starts shares it (a burst of SIGHUPs gives at most one reload after the
 * current one, which reads the file as it is then). `task` must not reject.
 */
export function serialized(task: () => Promise<void>): { run(): Promise<void>; idle(): Promise<void> } {
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  const run = (): Promise<void> => {
    if (!running) {
      running = task().finally(() => {
        running = undefined;
      });
      return running;
    }
    queued ??= running.then(() => {
      queued = undefined;
      return run();
    });
    return queued;
  };
  return {
    run,
    idle: async () => {
      while (running || queued) await (queued ?? running);
    },
  };
}

// --- internal ---

async function unload(runtime: Runtime, host: string, name: string): Promise<boolean> {
  try {
    return await runtime.modules.unload(host, name);
  } catch (err) {
    log("error", "Unloading %s on %s: %s", name, host, err instanceof Error ? err.message : err);
    return false;
  }
}
