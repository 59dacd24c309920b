/**
 * Token-bucket rate limits for HTTP routes (per API key, per client address, …).
 *
 * A bucket holds at most `limit` tokens and gains `limit` tokens per `period` seconds, continuously;
 * each request takes one. So a client may burst `limit` requests, then go on at the average rate,
 * and in any window of `period` seconds gets at most 2 × limit.
 *
 * Memory is bounded: a bucket that has refilled completely is the same as no bucket, so such idle
 * buckets are dropped by a sweep (at most once per `sweepSeconds`); and at most `maxKeys` buckets are
 * kept: past that, the least recently used one is dropped (which can only give its owner a full
 * bucket again, never take tokens from anyone). Counts live in this process only: several server
 * instances sharing one database each allow the full rate.
 *
 * Headers (draft-ietf-httpapi-ratelimit-headers-10): `RateLimit-Policy: "<name>";q=<limit>;w=<period>`
 * and `RateLimit: "<name>";r=<remaining>;t=<seconds until full>`; a 429 adds `Retry-After`.
 */
import { isIPv6 } from "node:net";
import { parseDuration } from "./duration.js";

export interface Rate {
  /** Bucket size: requests allowed in a burst, and per `period`. */
  limit: number;
  /** Seconds to refill an empty bucket. */
  period: number;
}

export interface RateDecision {
  ok: boolean;
  limit: number;
  /** Seconds of the policy's window (the rate's period). */
  window: number;
  /** Whole requests left right now. */
  remaining: number;
  /** Seconds until the bucket is full again (0 when full). */
  reset: number;
  /** Seconds until the next request is allowed (0 when ok). */
  retryAfter: number;
}

export interface RateLimiterOptions {
  /** The rate of every bucket unless `take` is given another (e.g. a key's own). */
  rate: Rate;
  /** Most buckets kept (default 10000). */
  maxKeys?: number;
  /** Idle buckets are swept at most this often (default 60 s). */
  sweepSeconds?: number;
  /** Milliseconds, monotonic (default performance.now); tests inject their own. */
  clock?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Tokens per millisecond and bucket size of the rate last applied. */
  perMs: number;
  limit: number;
}

const RATE = /^\s*(\d{1,9})\s*\/\s*((\d{1,9})\s*)?([a-z]+)\s*$/i;

/**
 * "10/minute", "100/s", "5/10min", "1000/hour", "20/day": requests per duration (the duration in
 * Prosody's syntax, its number optional). Undefined for anything else, and for 0 requests.
 */
export function parseRate(text: string): Rate | undefined {
  const m = RATE.exec(text);
  if (!m) return undefined;
  const limit = Number(m[1]);
  const period = parseDuration(`${m[3] ?? "1"}${m[4]!.toLowerCase()}`);
  // parseDuration also accepts a unit's longer spellings ("minutes"); require the unit to be whole.
  if (!/^(s|sec|secs?|seconds?|mins?|minutes?|h|hours?|d|days?|w|weeks?)$/i.test(m[4]!)) return undefined;
  if (!(limit > 0) || period === undefined || !(period > 0)) return undefined;
  return { limit, period };
}

/** A rate as `parseRate` reads it back ("10/60s"). */
export function formatRate(rate: Rate): string {
  return `${rate.limit}/${rate.period}s`;
}

export class RateLimiter {
  readonly rate: Rate;
  readonly maxKeys: number;
  private readonly buckets = new Map<string, Bucket>();
  private readonly clock: () => number;
  private readonly sweepMs: number;
  private lastSweep: number;

  constructor(options: RateLimiterOptions) {
    checkRate(options.rate);
    this.rate = options.rate;
    this.maxKeys = options.maxKeys ?? 10000;
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1) throw new RangeError(`RateLimiter: bad maxKeys ${options.maxKeys}`);
    this.clock = options.clock ?? (() => performance.now());
    this.sweepMs = (options.sweepSeconds ?? 60) * 1000;
    this.lastSweep = this.clock();
  }

  /** Buckets held now (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token from `key`'s bucket (made full if new), at `rate` (default the limiter's). */
  take(key: string, rate: Rate = this.rate): RateDecision {
    const now = this.clock();
    if (now - this.lastSweep >= this.sweepMs) this.sweep(now);
    const perMs = rate.limit / (rate.period * 1000);
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key); // re-inserted below: the Map's order is least recently used first
      bucket.tokens = Math.min(rate.limit, bucket.tokens + Math.max(0, now - bucket.at) * bucket.perMs);
    } else {
      if (this.buckets.size >= this.maxKeys) this.makeRoom(now);
      bucket = { tokens: rate.limit, at: now, perMs, limit: rate.limit };
    }
    bucket.at = now;
    bucket.perMs = perMs;
    bucket.limit = rate.limit;
    this.buckets.set(key, bucket);
    const ok = bucket.tokens >= 1;
    if (ok) bucket.tokens -= 1;
    return {
      ok,
      limit: rate.limit,
      window: rate.period,
      remaining: Math.floor(bucket.tokens),
      reset: Math.ceil((rate.limit - bucket.tokens) / perMs / 1000),
      retryAfter: ok ? 0 : Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000)),
    };
  }

  /** Drops every bucket that has refilled completely (it equals a new one). */
  sweep(now: number = this.clock()): void {
    this.lastSweep = now;
    for (const [key, b] of this.buckets) if (b.tokens + (now - b.at) * b.perMs >= b.limit) this.buckets.delete(key);
  }

  private makeRoom(now: number): void {
    // A full sweep at most once a second; between, the least recently used bucket goes.
    if (now - this.lastSweep >= 1000) this.sweep(now);
    while (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

function checkRate(rate: Rate): void {
  if (!rate || !(rate.limit > 0) || !(rate.period > 0) || !Number.isFinite(rate.limit) || !Number.isFinite(rate.period)) {
    throw new RangeError(`RateLimiter: bad rate ${JSON.stringify(rate)}`);
  }
}

/** One limit applied to a request: which limiter, whose bucket, at what rate. */
export interface RateCheck {
  /** The policy's name in the RateLimit headers ("key", "address", …). */
  name: string;
  limiter: RateLimiter;
  key: string;
  rate?: Rate;
}

/** The RateLimit-Policy and RateLimit header values for decisions, keyed as response headers. */
export function rateLimitHeaders(decisions: ReadonlyArray<{ name: string; decision: RateDecision }>): Record<string, string> {
  const policy = decisions.map(({ name, decision: d }) => `"${name}";q=${d.limit};w=${d.window}`).join(", ");
  const state = decisions.map(({ name, decision: d }) => `"${name}";r=${d.remaining};t=${d.reset}`).join(", ");
  return { ratelimit_policy: policy, ratelimit: state };
}

/**
 * The one call a route makes: takes a token for each check, in order (stopping at the first that
 * refuses), adds the RateLimit headers to `headers`, and returns undefined when the request may go
 * on, or the refusal (with `Retry-After` added to `headers`): the route answers 429.
 *
 * @example
 * const refused = limitRequest(event.response.headers, [{ name: "address", limiter, key: event.request.ip }]);
 * if (refused) return { statusCode: 429, headers: event.response.headers, body: "Too many requests" };
 */
export function limitRequest(headers: Record<string, string>, checks: readonly RateCheck[]): RateDecision | undefined {
  const decisions: Array<{ name: string; decision: RateDecision }> = [];
  let refused: RateDecision | undefined;
  for (const check of checks) {
    const decision = check.limiter.take(check.key, check.rate);
    decisions.push({ name: check.name, decision });
    if (!decision.ok) {
      refused = decision;
      break;
    }
  }
  if (decisions.length) Object.assign(headers, rateLimitHeaders(decisions));
  if (refused) headers.retry_after = String(refused.retryAfter);
  return refused;
}

/**
 * The bucket name for a client address: an IPv4 address as it is, an IPv6 address by its /64 (one
 * subscriber usually holds a whole /64, so per-address limits would be void otherwise); anything
 * else (a proxy's odd X-Forwarded-For) cut to 64 characters.
 */
export function addressBucket(ip: string): string {
  if (!isIPv6(ip) || ip.includes(".")) return ip.length > 64 ? ip.slice(0, 64) : ip;
  const [head, tail] = ip.toLowerCase().split("::") as [string, string | undefined];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** What `rateOption` needs of a module (structural: a Module fits). */
export interface RateOptionSource {
  getOption(name: string, defaultValue?: string): unknown;
  log(level: "error", format: string, ...args: unknown[]): void;
}

/**
 * A rate option of a module, e.g. `invites_api_rate = "100/minute"`: the parsed rate, undefined
 * when the option is `false` (limit off). A value that is not a rate is logged and `fallback` used.
 */
export function rateOption(module: RateOptionSource, name: string, fallback: string): Rate | undefined {
  const v = module.getOption(name, fallback);
  if (v === false) return undefined;
  const rate = typeof v === "string" ? parseRate(v) : undefined;
  if (rate) return rate;
  module.log("error", "Ignoring %s = %s: expected requests per period such as \"%s\", or false; using \"%s\"", name, JSON.stringify(v), fallback, fallback);
  const dflt = parseRate(fallback);
  if (!dflt) throw new RangeError(`rateOption: bad fallback ${fallback}`);
  return dflt;
}
