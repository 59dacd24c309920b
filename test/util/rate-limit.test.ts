/** The token bucket in src/util/rate-limit.ts: refill, refusal, headers, and its memory bound. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { RateLimiter, addressBucket, formatRate, limitRequest, parseRate, rateOption } from "../../src/util/rate-limit.js";
import { parseDuration } from "../../src/util/duration.js";

/** A clock the test moves by hand (milliseconds). */
function fakeClock() {
  const c = { t: 1_000_000, now: () => c.t, advance: (s: number) => void (c.t += s * 1000) };
  return c;
}

test("parseRate: requests per Prosody-style duration; anything else undefined", () => {
  assert.equal(parseRate("10/minute"), { limit: 10, period: 60 });
  assert.equal(parseRate("100/s"), { limit: 100, period: 1 });
  assert.equal(parseRate(" 5 / 10min "), { limit: 5, period: 600 });
  assert.equal(parseRate("1000/hour"), { limit: 1000, period: 3600 });
  assert.equal(parseRate("20/day"), { limit: 20, period: 86400 });
  for (const bad of ["", "10", "0/minute", "-1/minute", "10/", "10/m", "10/fortnight", "ten/minute", "10/minute extra", "1.5/s", "10/0s"]) {
    assert.is(parseRate(bad), undefined, bad);
  }
  assert.equal(parseRate(formatRate({ limit: 7, period: 90 })), { limit: 7, period: 90 });
  assert.is(parseDuration("2 weeks"), 1209600);
});

test("a burst of `limit` passes, the next is refused with Retry-After until one token refills", () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ rate: { limit: 3, period: 60 }, clock: clock.now });
  const got = [1, 2, 3, 4].map(() => rl.take("a"));
  assert.equal(got.map((d) => d.ok), [true, true, true, false]);
  assert.equal(got.map((d) => d.remaining), [2, 1, 0, 0]);
  assert.is(got[3]!.retryAfter, 20); // one token per 20 s
  assert.is(got[3]!.reset, 60);
  // Another key has its own bucket.
  assert.ok(rl.take("b").ok);
  clock.advance(19);
  assert.is(rl.take("a").ok, false);
  clock.advance(1);
  const after = rl.take("a");
  assert.ok(after.ok);
  assert.is(after.remaining, 0);
  // Refill is continuous and capped at the bucket size.
  clock.advance(3600);
  const full = rl.take("a");
  assert.equal([full.ok, full.remaining], [true, 2]);
});

test("a per-call rate (a key's own) overrides the limiter's", () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ rate: { limit: 1, period: 60 }, clock: clock.now });
  const fast = { limit: 100, period: 1 };
  let ok = 0;
  for (let i = 0; i < 150; i++) if (rl.take("k", fast).ok) ok++;
  assert.is(ok, 100);
  clock.advance(0.5);
  assert.is(rl.take("k", fast).remaining, 49);
});

test("idle (refilled) buckets are swept; the number of buckets never exceeds maxKeys", () => {
  const clock = fakeClock();
  const rl = new RateLimiter({ rate: { limit: 2, period: 10 }, clock: clock.now, maxKeys: 50, sweepSeconds: 30 });
  for (let i = 0; i < 40; i++) rl.take(`10.0.0.${i}`);
  assert.is(rl.size, 40);
  clock.advance(31); // all refilled: the next take sweeps them
  rl.take("fresh");
  assert.is(rl.size, 1);
  // A flood of distinct addresses: bounded, the least recently used go first.
  for (let i = 0; i < 5000; i++) {
    rl.take(`flood-${i}`);
    assert.ok(rl.size <= 50);
    if (i % 10 === 0) rl.take("busy", { limit: 1000, period: 1e6 });
  }
  assert.is(rl.size, 50);
  // "busy" was used recently all along, so it was never evicted: its bucket kept its count.
  assert.is(rl.take("busy", { limit: 1000, period: 1e6 }).remaining, 1000 - 501);
});

test("limitRequest: headers per the ratelimit-headers draft; the first refusal stops and sets Retry-After", () => {
  const clock = fakeClock();
  const perAddress = new RateLimiter({ rate: { limit: 5, period: 60 }, clock: clock.now });
  const perKey = new RateLimiter({ rate: { limit: 1, period: 30 }, clock: clock.now });
  const checks = [
    { name: "address", limiter: perAddress, key: "192.0.2.1" },
    { name: "key", limiter: perKey, key: "k1" },
  ];
  const h1: Record<string, string> = {};
  assert.is(limitRequest(h1, checks), undefined);
  assert.equal(h1, { ratelimit_policy: '"address";q=5;w=60, "key";q=1;w=30', ratelimit: '"address";r=4;t=12, "key";r=0;t=30' });
  const h2: Record<string, string> = {};
  const refused = limitRequest(h2, checks);
  assert.ok(refused && !refused.ok);
  assert.is(h2.retry_after, "30");
  assert.is(h2.ratelimit, '"address";r=3;t=24, "key";r=0;t=30');
  // The address bucket was charged, the key's refused: stopping at the first refusal.
  const h3: Record<string, string> = {};
  assert.ok(limitRequest(h3, [{ name: "address", limiter: perAddress, key: "192.0.2.1", rate: { limit: 5, period: 60 } }]) === undefined);
  assert.is(h3.ratelimit, '"address";r=2;t=36');
  assert.is(h3.retry_after, undefined);
});

test("addressBucket: IPv4 as is, IPv6 by its /64, odd strings bounded", () => {
  assert.is(addressBucket("192.0.2.7"), "192.0.2.7");
  assert.is(addressBucket("2001:db8:0:1:aaaa::1"), "2001:db8:0:1::/64");
  assert.is(addressBucket("2001:DB8:0:1:bbbb:cccc:dddd:eeee"), "2001:db8:0:1::/64");
  assert.is(addressBucket("2001:db8::"), "2001:db8:0:0::/64");
  assert.is(addressBucket("::1"), "0:0:0:0::/64");
  assert.is(addressBucket("x".repeat(1000)).length, 64);
});

test("rateOption: a rate, false = off, a bad value logged and the fallback used", () => {
  const logged: string[] = [];
  const source = (value: unknown) => ({ getOption: (_n: string, d?: string) => (value === undefined ? d : value), log: (_l: string, f: string) => void logged.push(f) });
  assert.equal(rateOption(source("5/s"), "x_rate", "10/minute"), { limit: 5, period: 1 });
  assert.equal(rateOption(source(undefined), "x_rate", "10/minute"), { limit: 10, period: 60 });
  assert.is(rateOption(source(false), "x_rate", "10/minute"), undefined);
  assert.is(logged.length, 0);
  assert.equal(rateOption(source("lots"), "x_rate", "10/minute"), { limit: 10, period: 60 });
  assert.equal(rateOption(source(7), "x_rate", "10/minute"), { limit: 10, period: 60 });
  assert.is(logged.length, 2);
});

test("misuse throws early", () => {
  assert.throws(() => new RateLimiter({ rate: { limit: 0, period: 60 } }), /bad rate/);
  assert.throws(() => new RateLimiter({ rate: { limit: 1, period: 60 }, maxKeys: 0 }), /maxKeys/);
});

test.run();
