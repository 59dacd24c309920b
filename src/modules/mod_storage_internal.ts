/**
 * storage = "internal" (Prosody's default): one Lua data file per record under the data directory,
 * in the exact format of Prosody's util/datamanager.lua (see src/storage/drivers/internal.ts).
 */
import type { Module } from "../core/types.js";
import { createInternalProvider } from "../storage/drivers/internal.js";
import { lockTimeoutMs } from "./storage-options.js";

export default function (module: Module): void {
  module.provides(
    "storage",
    createInternalProvider({
      dataPath: module.server.paths.data,
      host: module.host,
      log: (level, message) => module.log(level, "%s", message),
      lockTimeoutMs: lockTimeoutMs(module),
    }),
  );
}

