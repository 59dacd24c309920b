/** storage = "memory": data kept in this process only (Prosody's mod_storage_memory). */
import type { Module } from "../core/types.js";
import { createMemoryProvider } from "../storage/drivers/memory.js";

export default function (module: Module): void {
  // One provider per host; the data lives as long as the process (Prosody keeps it in module:shared).
  const registry = module.shared<{ provider?: ReturnType<typeof createMemoryProvider> }>("memory_provider");
  registry.provider ??= createMemoryProvider();
  module.provides("storage", registry.provider);
}
