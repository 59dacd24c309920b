/**
 * Honest skips. A test whose precondition is missing (real Prosody, root, sqlite3, Chromium, the
 * golden transcripts…) must show up as skipped, with its reason, not as passed. uvu cannot skip a
 * test once it runs, so the test returns early after printing one line of its own:
 *
 *   SKIP <suite> › <test>: <reason>
 *
 * scripts/run-tests.mjs counts those lines as skipped (and takes them off uvu's passed count).
 * Two forms:
 *   test("…", async (ctx) => { if (!inst) return skip(ctx, missing); … })     decided inside the test
 *   const asRoot = skipIf(test, !isRoot && "needs root"); asRoot("…", () => { … })   per test
 */
import { basename } from "node:path";
import type { Callback, Test } from "uvu";

/** What uvu passes every test: the suite's and the test's names (and the suite's context). */
export interface TestCrumbs {
  __suite__: string;
  __test__: string;
}

/** The prefix scripts/run-tests.mjs looks for at the start of a line. */
export const SKIP_PREFIX = "SKIP ";

const reported = new Set<string>();

/** The line that marks the running test skipped; exported for the runner's own test. */
export function skipLine(suite: string, name: string, reason: string): string {
  const flat = (s: string) => s.replace(/\s*\n\s*/g, " ");
  return `${SKIP_PREFIX}${flat(suite)} › ${flat(name)}: ${flat(reason)}`;
}

/**
 * Marks the running test skipped: call it as `return skip(ctx, reason)` before the test asserts
 * anything. A missing reason is a mistake in the test (it would hide a failure), so it throws.
 */
export function skip(ctx: TestCrumbs, reason: string | false | null | undefined): void {
  if (!reason) throw new Error(`test "${ctx.__test__}" tried to skip without a reason`);
  const suite = ctx.__suite__ || basename(process.argv[1] ?? "tests");
  const key = `${suite}\0${ctx.__test__}`;
  if (reported.has(key)) return;
  reported.add(key);
  // uvu writes its progress dots without newlines: start our own line.
  process.stdout.write(`\n${skipLine(suite, ctx.__test__, reason)}\n`);
}

export type SkipReason = string | false | null | undefined;

/**
 * `t` itself, except that its tests skip themselves when `reason` gives a string. `reason` is asked
 * when each test runs (after `before` hooks), so it may depend on what they set up. Hooks and
 * `run()` are `t`'s own.
 */
export function skipIf<T>(t: Test<T>, reason: SkipReason | (() => SkipReason)): Test<T> {
  const why = typeof reason === "function" ? reason : () => reason;
  const guard =
    (fn: Callback<T>): Callback<T> =>
    (ctx) => {
      const r = why();
      if (r) return skip(ctx, r);
      return fn(ctx);
    };
  const wrapped = (name: string, fn: Callback<T>) => t(name, guard(fn));
  return Object.assign(wrapped, {
    only: (name: string, fn: Callback<T>) => t.only(name, guard(fn)),
    skip: t.skip,
    before: t.before,
    after: t.after,
    run: t.run,
  });
}
