/** test/helpers/seed.ts: a printed seed replays the same random choices; a bad seed is refused early. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { seededRandom, testSeed } from "../helpers/seed.js";

function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  set(vars);
  try {
    return fn();
  } finally {
    set(saved);
  }
}

const draw = (r: () => number) => Array.from({ length: 5 }, r);

test("TEST_SEED replays the same sequence; without it each run gets a new seed", () => {
  const a = withEnv({ TEST_SEED: "424242" }, () => seededRandom());
  const b = withEnv({ TEST_SEED: "424242" }, () => seededRandom());
  assert.is(a.seed, 424242);
  assert.equal(draw(a.random), draw(b.random));
  const seeds = new Set(Array.from({ length: 5 }, () => withEnv({ TEST_SEED: undefined }, () => testSeed())));
  assert.ok(seeds.size > 1, "fresh seeds differ");
});

test("a file's own variable wins over TEST_SEED; TEST_SEED is the fallback", () => {
  assert.is(withEnv({ MY_SEED: "7", TEST_SEED: "9" }, () => testSeed("MY_SEED")), 7);
  assert.is(withEnv({ MY_SEED: undefined, TEST_SEED: "9" }, () => testSeed("MY_SEED")), 9);
});

test("a seed that is not an integer is refused with the variable's name", () => {
  for (const bad of ["abc", "1.5", "1e400"]) {
    assert.throws(() => withEnv({ TEST_SEED: bad }, () => testSeed()), (e: Error) => e.message === `TEST_SEED=${bad}: a seed is an integer`, bad);
  }
});

test.run();
