/**
 * storage = "internal" (Prosody's default): one Lua data file per record under the data directory,
 * in the exact format of Prosody's util/datamanager.lua (see src/storage/drivers/internal.ts).
 * The providers of every host of this runtime share one set of file locks and one parse cache,
 * kept in the runtime's shared table (not in a module-level variable: two runtimes in one process
 * stay apart).
 */
import type { Module } from "../core/types.js";
import { createInternalProvider, createInternalShared, type InternalShared } from "../storage/drivers/internal.js";
import { lockTimeoutMs } from "./storage-options.js";

export default function (module: Module): void {
  const state = module.shared<{ files?: InternalShared }>("/*/storage_internal/files");
  state.files ??= createInternalShared();
  module.provides(
    "storage",
    createInternalProvider({
      dataPath: module.server.paths.data,
      host: module.host,
      log: (level, message) => module.log(level, "%s", message),
      lockTimeoutMs: lockTimeoutMs(module),
      shared: state.files,
    }),
  );
}
