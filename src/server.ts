/** Running the host: activate every enabled host, serve until SIGINT/SIGTERM, stop cleanly. */
import { describeConfigSource, type Config } from "./core/config/index.js";
import { createLogger } from "./core/logger.js";
import type { Runtime } from "./core/runtime.js";
import { createRuntime } from "./create-runtime.js";
import type { TrustPolicy } from "./core/trusted-paths.js";
import { loadSqlStorage, openSqlDatabasesEarly } from "./core/sql-startup.js";

const log = createLogger("general");

export { describeConfigSource };

/**
 * Starts the server on a loaded config. `trust`: set by prosodyctl when started as root, so
 * plugins load only from trusted paths.
 */
export async function startServer(config: Config, opts: { cwd?: string; trust?: TrustPolicy } = {}): Promise<Runtime> {
  log("info", "Prosody-compatible host starting: %s", describeConfigSource(config));
  for (const w of config.warnings) log("warn", "Configuration warning: %s", w);
  const runtime = createRuntime({ config, processType: "server", cwd: opts.cwd, trust: opts.trust });
  const hosts = config.hosts().filter((h) => config.isEnabled(h));
  // Before any module: a database that must be refused stops the start with its own message.
  await openSqlDatabasesEarly(runtime, hosts);
  try {
    await runtime.start();
    await loadSqlStorage(runtime, hosts);
  } catch (err) {
    await runtime.stop().catch(() => undefined);
    throw err;
  }
  return runtime;
}

/**
 * Resolves on the first SIGINT/SIGTERM; a second one exits at once (a stuck shutdown can
 * always be interrupted).
 */
export function waitForStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    let signalled = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) {
        log("warn", "Received %s again, exiting now", sig);
        process.exit(1);
      }
      signalled = true;
      log("info", "Received %s, shutting down", sig);
      resolveSignal(sig);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

/** Stops the server: HTTP closes after in-flight requests, modules unload, stores flush. */
export async function stopServer(runtime: Runtime): Promise<void> {
  try {
    await runtime.stop();
    log("info", "Shutdown complete");
  } catch (err) {
    log("error", "Error while stopping: %s", err);
  }
}
