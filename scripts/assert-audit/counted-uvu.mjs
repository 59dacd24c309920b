// uvu whose tests report "NO-ASSERT <suite> › <test>" when they end without one assertion.
// The suite name is written as test/helpers/skip.ts writes it, so run-tests.mjs can tell a test
// that skipped (it printed a SKIP line) from one that checked nothing.
import { basename } from "node:path";
import * as real from "uvu";

globalThis.__assertions ??= 0;

function counting(t) {
  const guard = (name, fn) => async (ctx) => {
    const before = globalThis.__assertions;
    await fn(ctx);
    if (globalThis.__assertions === before) {
      const suite = ctx.__suite__ || basename(process.argv[1] ?? "tests");
      process.stdout.write(`\nNO-ASSERT ${suite} › ${name.replace(/\s*\n\s*/g, " ")}\n`);
    }
  };
  return Object.assign((name, fn) => t(name, guard(name, fn)), {
    only: (name, fn) => t.only(name, guard(name, fn)),
    skip: t.skip,
    before: t.before,
    after: t.after,
    run: t.run,
  });
}

export const suite = (...args) => counting(real.suite(...args));
export const test = counting(real.test);
export const exec = real.exec;
