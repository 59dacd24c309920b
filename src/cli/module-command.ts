/**
 * `prosodyctl mod_<name> ARGS…`: a plugin's command, on a prosodyctl runtime of its own. In the
 * running server (a command sent through the admin socket) that runtime uses the server's
 * storage, its drivers loaded and databases open, instead of opening them for each command; its
 * modules are made afresh as in prosodyctl (plugin files are imported once per process), so
 * events fired by the command reach only them, and output and exit codes are the same both ways.
 */
import type { Config } from "../core/config/index.js";
import { createLogger } from "../core/logger.js";
import { ModuleLoadError } from "../core/modulemanager.js";
import type { ModuleImpl } from "../core/module.js";
import type { StorageManager } from "../core/storagemanager.js";
import type { CommandContext } from "../core/types.js";
import { createRuntime } from "../create-runtime.js";
import type { TrustPolicy } from "../core/trusted-paths.js";
import type { CliIO } from "./io.js";
import { openSqlStorage } from "./sql-storage.js";

/** In the running server: its storage, when a command may use it for this (freshly read) config. */
export type SharedStorage = (config: Config) => StorageManager | undefined;

type Load = () => Promise<{ config: Config; trust?: TrustPolicy } | number>;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function runModuleCommand(name: string, args: string[], io: CliIO, load: Load, shared?: SharedStorage): Promise<number> {
  const loaded = await load();
  if (typeof loaded === "number") return loaded;
  const { config } = loaded;
  const log = createLogger("prosodyctl");
  for (const w of config.warnings) log("warn", "Configuration warning: %s", w);
  const storage = shared?.(config);
  const runtime = createRuntime({ config, processType: "prosodyctl", cwd: io.cwd, trust: loaded.trust, storage });
  try {
    const refused = storage ? undefined : await openSqlStorage(runtime, config);
    if (refused) {
      io.stdout(`${refused}\n`); // where prosodyctl prints a command's failures
      return 1;
    }
    let mod;
    try {
      mod = await runtime.modules.forCommand(name);
    } catch (err) {
      return failedToLoad(name, err, io);
    }
    return await runCommand(mod, args, io);
  } finally {
    // Flush every store the command wrote to before the process exits (the server's stay open).
    await runtime.stop().catch((err) => log("error", "Error while closing: %s", errorText(err)));
  }
}

function failedToLoad(name: string, err: unknown, io: CliIO): number {
  const msg = err instanceof ModuleLoadError && err.code === "module-not-found" ? "module not found" : errorText(err);
  io.stdout(`Failed to load module '${name}': ${msg}\n`);
  return 1;
}

/** Runs the module's command with print going to this command's stdout; the exit code. */
async function runCommand(mod: ModuleImpl, args: string[], io: CliIO): Promise<number> {
  if (typeof mod.command !== "function") {
    io.stdout(`Fail: mod_${mod.name} does not support any commands\n`);
    return 1;
  }
  const ctx: CommandContext = {
    module: mod,
    print: (...text) => io.stdout(`${text.map((t) => (t === undefined || t === null ? "nil" : String(t))).join("\t")}\n`),
  };
  let result: unknown;
  try {
    // A command that throws before returning its promise is caught here too.
    result = await mod.command(args, ctx);
  } catch (err) {
    io.stdout(`Failed to execute command: Error: ${errorText(err)}\n`);
    return 1;
  }
  if (typeof result === "number") return Number.isInteger(result) && result >= 0 && result <= 255 ? result : 1;
  if (typeof result === "string") io.stdout(`${result}\n`);
  return 0;
}
