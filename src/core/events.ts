/**
 * An event bus with Prosody's semantics (util/events.lua): handlers run in priority order,
 * higher first (default 0, equal priorities in insertion order); the first handler that returns
 * anything but `undefined` stops the chain and its value is returned. Adding the same function
 * twice keeps one registration with the latest priority.
 *
 * fireAsync is the same dispatch for a firing module that can wait (Prosody's handlers may block
 * inside an async runner): each handler's promise is awaited before the next handler runs, so a
 * handler can veto (`event.allowed = false`) after an awaited lookup; a rejection stops the chain
 * and rejects fireAsync, as a throw does fire.
 */
import type { EventHandler, Unhook } from "./types.js";

interface Entry {
  handler: EventHandler;
  priority: number;
  seq: number;
}

export class EventBus {
  private readonly handlers = new Map<string, Entry[]>();
  private seq = 0;

  hook(event: string, handler: EventHandler, priority = 0): Unhook {
    if (typeof handler !== "function") {
      throw new TypeError(`hook(${JSON.stringify(event)}): handler must be a function, got ${typeof handler}`);
    }
    if (typeof priority !== "number" || Number.isNaN(priority)) {
      throw new TypeError(`hook(${JSON.stringify(event)}): priority must be a number`);
    }
    const list = (this.handlers.get(event) ?? []).filter((e) => e.handler !== handler);
    list.push({ handler, priority, seq: this.seq++ });
    // A fresh sorted array per change: fire() iterates a snapshot, so hooks added or removed
    // by a running handler take effect from the next fire.
    list.sort((a, b) => b.priority - a.priority || a.seq - b.seq);
    this.handlers.set(event, list);
    return () => this.unhook(event, handler);
  }

  unhook(event: string, handler: EventHandler): void {
    const list = this.handlers.get(event);
    if (!list) return;
    const rest = list.filter((e) => e.handler !== handler);
    if (rest.length) this.handlers.set(event, rest);
    else this.handlers.delete(event);
  }

  fire(event: string, data?: unknown): unknown {
    const list = this.handlers.get(event);
    if (!list) return undefined;
    for (const { handler } of list) {
      const result = handler(data);
      if (result !== undefined) return result;
    }
    return undefined;
  }

  async fireAsync(event: string, data?: unknown): Promise<unknown> {
    const list = this.handlers.get(event);
    if (!list) return undefined;
    for (const { handler } of list) {
      const result = await handler(data);
      if (result !== undefined) return result;
    }
    return undefined;
  }

  has(event: string): boolean {
    return this.handlers.has(event);
  }

  count(event: string): number {
    return this.handlers.get(event)?.length ?? 0;
  }
}
