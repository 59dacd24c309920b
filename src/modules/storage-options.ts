/** Options shared by the storage drivers' modules. */
import type { Module } from "../core/types.js";

/**
 * `storage_lock_timeout` (seconds, default 30; our option): how long a write waits for another of
 * our processes holding the same file or database before it fails (HTTP: 503).
 */
export function lockTimeoutMs(module: Module): number {
  const s = module.getOptionNumber("storage_lock_timeout", 30) ?? 30;
  return Number.isFinite(s) && s > 0 ? s * 1000 : 30_000;
}
