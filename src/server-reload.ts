/**
 * SIGHUP in the server: re-read the config from where it came from, apply it (src/core/reload.ts),
 * then fire `config-reloaded` ({ config }) and `reopen-log-files` ({}) on the global bus, as
 * Prosody does. HTTP keeps serving throughout: nothing here closes a listener or a connection, so
 * requests in flight finish (a module unloaded meanwhile only loses its routes for new requests).
 *
 * A config that cannot be read or evaluated is refused with one error line and the running one
 * stays. Log files are reopened even then (Prosody reopens them only when the config is good):
 * logrotate's postrotate sends SIGHUP and must not leave us writing to a rotated file because of
 * a typo in the config.
 */
import { createConfig } from "./core/config/config.js";
import { ConfigError, loadConfigFile, type Config } from "./core/config/index.js";
import { createLogger } from "./core/logger.js";
import { applyConfig, describeSummary, serialized } from "./core/reload.js";
import type { Runtime } from "./core/runtime.js";

const log = createLogger("general");

export interface ReloadOptions {
  /** Environment for ENV_* and os.getenv in the config (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** A one-line reason to refuse the new config (e.g. a root process's trust check), or undefined. */
  vet?: (config: Config) => string | undefined;
}

/**
 * Reads the config again from the file it came from, keeping its source (so the log still says
 * --config, PROSODY_CONFIG or the working directory). Throws ConfigError.
 */
export async function rereadConfig(current: Config, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  if (current.file === null) return current;
  const fresh = await loadConfigFile(current.file, { env });
  const next = createConfig(current.file, current.source, [...fresh.sections.values()], fresh.warnings, fresh.files);
  // The defaults of where the file was found (a system config's /var/lib/prosody…) stay.
  next.pathDefaults = current.pathDefaults;
  return next;
}

/** One reload of a running server; never rejects (failures are logged). */
export async function reloadServer(runtime: Runtime, opts: ReloadOptions = {}): Promise<void> {
  log("info", "Reloading configuration file");
  runtime.globalEvents.fire("reloading-config");
  let next: Config | undefined;
  try {
    next = await rereadConfig(runtime.config, opts.env);
    const refused = opts.vet?.(next) ?? noHostLeft(next);
    if (refused) {
      log("error", "Not reloading the configuration, keeping the running one: %s", refused);
      next = undefined;
    }
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (err instanceof ConfigError && /^Cannot read config file/.test(msg)) {
      log("error", "Couldn't read the config file when trying to reload: %s", msg);
    } else {
      log("error", "There was an error parsing the configuration file: %s", msg);
    }
  }
  if (next) {
    if (runtime.config.file === null) log("info", "Running on the embedded default config: nothing to reload");
    for (const w of next.warnings) log("warn", "Configuration warning: %s", w);
    try {
      const summary = await applyConfig(runtime, next);
      log("info", "Configuration reloaded: %s", describeSummary(summary));
      if (summary.restartOnly.length) {
        log("warn", "Changed options that take effect only on restart: %s", summary.restartOnly.join(", "));
      }
      fireSafely(runtime, "config-reloaded", { config: next });
    } catch (err) {
      log("error", "Error while applying the reloaded configuration: %s", err instanceof Error ? err.message : err);
    }
  }
  fireSafely(runtime, "reopen-log-files", {});
}

/**
 * Makes SIGHUP reload instead of killing the process, from now on: a SIGHUP before `attach`
 * (during start-up) is remembered and runs once attached; reloads run one at a time and a burst
 * is coalesced (src/core/reload.ts serialized). `detach` stops listening and waits for a reload
 * in progress, so a stop never tears modules down under it.
 */
export function catchReloadSignal(): {
  attach(runtime: Runtime, opts?: ReloadOptions): void;
  detach(): Promise<void>;
} {
  let target: { runtime: Runtime; opts: ReloadOptions } | undefined;
  let early = false;
  let closed = false;
  const queue = serialized(async () => {
    if (target) await reloadServer(target.runtime, target.opts);
  });
  const onHup = () => {
    log("info", "Received SIGHUP");
    if (closed) return;
    if (!target) {
      early = true;
      return;
    }
    void queue.run();
  };
  process.on("SIGHUP", onHup);
  return {
    attach(runtime, opts = {}) {
      target = { runtime, opts };
      if (early) void queue.run();
    },
    async detach() {
      closed = true;
      await queue.idle();
      // Keep the listener: a late SIGHUP during shutdown must not kill the process mid-flush.
    },
  };
}

// --- internal ---

function noHostLeft(config: Config): string | undefined {
  const local = config.hosts().filter((h) => config.isEnabled(h) && config.sections.get(h)?.kind === "VirtualHost");
  return local.length ? undefined : "No enabled VirtualHost entries found in the config file.";
}

function fireSafely(runtime: Runtime, event: string, data: object): void {
  try {
    runtime.globalEvents.fire(event, data);
  } catch (err) {
    log("error", "Error in a %s handler: %s", event, err instanceof Error ? err.message : err);
  }
}
