/**
 * The route table. Routes are keyed like Prosody's HTTP events: "METHOD /path" for global
 * apps and "METHOD host/path" for a host. A path ending in "/*" is a wildcard matching any
 * deeper path (the remainder is passed to the handler as `rest`).
 *
 * Handlers matching a key run in this order: more "/" in the registered key first, exact
 * before wildcard, higher priority first, then registration order.
 */
import type { HttpHandler } from "./types.js";

interface RouteEntry {
  key: string;
  handler: HttpHandler;
  priority: number;
  /** Largest request body this registration accepts (bytes; Infinity = the server's cap). */
  maxBody: number;
  wildcard: boolean;
  /** For wildcards: the key without the trailing "*". */
  prefix: string;
  slashes: number;
  seq: number;
}

export interface RouteMatch {
  key: string;
  handler: HttpHandler;
  rest?: string;
  maxBody: number;
}

export function routeKey(method: string, host: string | null, path: string): string {
  return `${method.toUpperCase()} ${host ?? ""}${path}`;
}

/** Bucket for wildcard lookups: "METHOD host" (everything before the path). */
function bucketOf(key: string): string {
  const slash = key.indexOf("/");
  return slash < 0 ? key : key.slice(0, slash);
}

function countSlashes(key: string): number {
  let n = 0;
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) === 0x2f) n++;
  return n;
}

function compare(a: RouteEntry, b: RouteEntry): number {
  return (
    b.slashes - a.slashes ||
    Number(a.wildcard) - Number(b.wildcard) ||
    b.priority - a.priority ||
    a.seq - b.seq
  );
}

export class RouteTable {
  private readonly exact = new Map<string, RouteEntry[]>();
  private readonly wild = new Map<string, RouteEntry[]>();
  private seq = 0;

  get size(): number {
    let n = 0;
    for (const list of this.exact.values()) n += list.length;
    for (const list of this.wild.values()) n += list.length;
    return n;
  }

  /** Adds a handler; returns a function removing exactly this registration. */
  add(key: string, handler: HttpHandler, priority = 0, maxBody = Infinity): () => void {
    const wildcard = key.endsWith("/*");
    const entry: RouteEntry = {
      key,
      handler,
      priority,
      maxBody,
      wildcard,
      prefix: wildcard ? key.slice(0, -1) : key,
      slashes: countSlashes(key),
      seq: this.seq++,
    };
    const map = wildcard ? this.wild : this.exact;
    const bucket = wildcard ? bucketOf(key) : key;
    const list = map.get(bucket) ?? [];
    list.push(entry);
    list.sort(compare);
    map.set(bucket, list);
    return () => {
      const current = map.get(bucket);
      if (!current) return;
      const i = current.indexOf(entry);
      if (i >= 0) current.splice(i, 1);
      if (current.length === 0) map.delete(bucket);
    };
  }

  /** All handlers for a request key, in calling order. */
  match(key: string): RouteMatch[] {
    const exact = this.exact.get(key);
    const wild = this.wild.get(bucketOf(key));
    if (!wild) return exact ? exact.map((e) => ({ key: e.key, handler: e.handler, maxBody: e.maxBody })) : [];
    const entries: RouteEntry[] = exact ? [...exact] : [];
    for (const e of wild) if (key.startsWith(e.prefix)) entries.push(e);
    entries.sort(compare);
    return entries.map((e) =>
      e.wildcard
        ? { key: e.key, handler: e.handler, rest: key.slice(e.prefix.length), maxBody: e.maxBody }
        : { key: e.key, handler: e.handler, maxBody: e.maxBody },
    );
  }

  clear(): void {
    this.exact.clear();
    this.wild.clear();
  }
}
