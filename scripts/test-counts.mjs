// Reads one test file's output (uvu's summary plus our own lines) into counts for run-tests.mjs.
// uvu counts a test that returned early as passed; test/helpers/skip.ts prints
// "SKIP <suite> › <test>: <reason>" for such a test, and those lines move it from passed to skipped.
// Tests skipped with uvu's own test.skip() are in uvu's "Skipped" count, without a reason.
// scripts/assert-audit prints "NO-ASSERT <suite> › <test>" for a test that made no assertion: unless
// that test skipped, it moves from passed to failed.

const SKIP_LINE = /^SKIP (.+)$/;
const NO_ASSERT_LINE = /^NO-ASSERT (.+)$/;

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");

function uvuCount(text, label) {
  const m = text.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m"));
  return m ? Number(m[1]) : undefined;
}

/**
 * Counts for one file: `out` is its whole output, `code` its exit code.
 * Returns { passed, failed, skipped, reasons, empty, crashed }: reasons are the skip lines' texts,
 * empty the tests that asserted nothing.
 */
export function countFile(out, code) {
  const text = stripAnsi(out);
  const total = uvuCount(text, "Total");
  const ok = uvuCount(text, "Passed");
  const uvuSkipped = uvuCount(text, "Skipped") ?? 0;
  const lines = text.split("\n").map((l) => l.trim());
  const reasons = lines.map((l) => SKIP_LINE.exec(l)?.[1]).filter((r) => r !== undefined);
  // A skipped test asserts nothing by design: its skip line starts with its "<suite> › <test>: ".
  const empty = lines
    .map((l) => NO_ASSERT_LINE.exec(l)?.[1])
    .filter((id) => id !== undefined && !reasons.some((r) => r.startsWith(`${id}: `)));
  if (uvuSkipped) reasons.push(`${uvuSkipped} test(s) skipped with test.skip() (no reason given)`);
  if (total === undefined || ok === undefined) {
    // Crashed before uvu could report: one failure, whatever ran before it.
    return { passed: 0, failed: 1, skipped: 0, reasons, empty, crashed: true };
  }
  // A skip line belongs to a test uvu counted as passed; never count more of them than passed.
  const early = Math.min(reasons.length - (uvuSkipped ? 1 : 0), ok);
  const hollow = Math.min(empty.length, ok - early);
  // uvu's Total leaves out test.skip() tests, so every test not passed failed.
  const failed = Math.max(total - ok + hollow, code === 0 ? 0 : 1);
  return { passed: ok - early - hollow, failed, skipped: early + uvuSkipped, reasons, empty, crashed: false };
}
