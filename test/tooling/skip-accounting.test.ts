/**
 * Skips are counted as skipped, with their reasons: test/helpers/skip.ts prints the lines and
 * scripts/test-counts.mjs (used by run-tests.mjs) turns a file's output into passed/failed/skipped.
 * The fixtures run as real uvu files in their own process, as run-tests.mjs runs every suite (with
 * scripts/assert-audit, which reports tests that assert nothing).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { countFile } from "../../scripts/test-counts.mjs";
import { skipLine } from "../helpers/skip.js";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/skips/${name}.ts`, import.meta.url));
const AUDIT = fileURLToPath(new URL("../../scripts/assert-audit/register.mjs", import.meta.url));

function run(name: string) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "--import", AUDIT, fixture(name)], {
    encoding: "utf8",
    env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" },
  });
  return { out: r.stdout + r.stderr, code: r.status ?? 1 };
}

test("every skip is counted as skipped with its reason (not as asserting nothing); uvu's test.skip is counted without one", () => {
  const { out, code } = run("mixed");
  assert.is(code, 0, out);
  const c = countFile(out, code);
  assert.equal(c.reasons, [
    "mixed.ts › skips inside the test: no widget here (second line)",
    "mixed.ts › skips twice, reported once: first",
    "mixed.ts › lazy precondition: precondition asked at run time",
    "a named suite › static precondition missing: needs root",
    "1 test(s) skipped with test.skip() (no reason given)",
  ]);
  assert.equal(c.empty, []);
  assert.equal({ passed: c.passed, failed: c.failed, skipped: c.skipped, crashed: c.crashed }, { passed: 3, failed: 0, skipped: 5, crashed: false });
});

test("a skip without a reason fails the test, so does a test that asserts nothing; failures are not hidden by skips", () => {
  const { out, code } = run("failing");
  assert.is(code, 1, out);
  assert.match(out, 'test "skips without a reason" tried to skip without a reason');
  const c = countFile(out, code);
  assert.equal(c.reasons, ["failing.ts › skips with a reason: not here"]);
  assert.equal(c.empty, ["failing.ts › asserts nothing"]);
  assert.equal({ passed: c.passed, failed: c.failed, skipped: c.skipped }, { passed: 1, failed: 3, skipped: 1 });
});

test("counting: a crash before uvu's summary is one failure; a non-zero exit after a clean summary is one too", () => {
  assert.equal(countFile("boom\n", 1), { passed: 0, failed: 1, skipped: 0, reasons: [], empty: [], crashed: true });
  const summary = "\n  Total:     3\n  Passed:    3\n  Skipped:   0\n  Duration:  1ms\n";
  assert.is(countFile(summary, 0).failed, 0);
  assert.is(countFile(summary, 1).failed, 1);
  // test.skip() tests are outside uvu's Total: they do not cancel failures out.
  assert.is(countFile("\n  Total:     4\n  Passed:    2\n  Skipped:   2\n", 1).failed, 2);
  // More skip lines than passed tests (a test printed one and then failed) cannot make passed negative.
  const odd = `${skipLine("s", "a", "r")}\n${skipLine("s", "b", "r")}\n  Total:     2\n  Passed:    1\n  Skipped:   0\n`;
  assert.equal([countFile(odd, 1).passed, countFile(odd, 1).skipped, countFile(odd, 1).failed], [0, 1, 1]);
});

test("the skip line is one line, whatever the names hold", () => {
  assert.is(skipLine("suite\nx", "name\n  y", "why\nnot"), "SKIP suite x › name y: why not");
});

test.run();
