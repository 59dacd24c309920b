/**
 * What one module instance registered, kept by the module manager, never handed to the plugin:
 * on unload the manager releases all of it (Prosody's do_unload_module walking the module's
 * event_handlers and items). The module object writes here as it registers things.
 */
import type { EventBus } from "./events.js";
import type { EventHandler } from "./types.js";

export interface HookRecord {
  bus: EventBus;
  event: string;
  handler: EventHandler;
}

export class ModuleRecord {
  /** Hooks on any bus, in registration order. */
  readonly hooks: HookRecord[] = [];
  /** Items by key (`http-provider`, `storage-provider`, …), in the order they were added. */
  readonly items = new Map<string, unknown[]>();
  /** Pending timers of addTimer. */
  readonly timers = new Set<NodeJS.Timeout>();
  /** onUnload functions, run in reverse order after `module.unload`. */
  readonly cleanups: Array<() => unknown> = [];
  /** Names this module depends on (it is unloaded when one of them is). */
  readonly dependencies = new Set<string>();
  /** False from the start of its teardown. */
  loaded = true;
  /** setGlobal() was called (as opposed to merely being loaded on the "*" pseudo-host). */
  explicitGlobal = false;
  /** The module-unloaded hook that follows dependencies is installed. */
  followsDependencies = false;
}
