// Reads one test file's output (uvu's summary plus our skip lines) into counts for run-tests.mjs.
// uvu counts a test that returned early as passed; test/helpers/skip.ts prints
// "SKIP <suite> › <test>: <reason>" for such a test, and those lines move it from passed to skipped.
// Tests skipped with uvu's own test.skip() are in uvu's "Skipped" count, without a reason.

const SKIP_LINE = /^SKIP (.+)$/;

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");

function uvuCount(text, label) {
  const m = text.match(new RegExp(`^\\s*${label}:\\s+(\\d+)`, "m"));
  return m ? Number(m[1]) : undefined;
}

/**
 * Counts for one file: `out` is its whole output, `code` its exit code.
 * Returns { passed, failed, skipped, reasons, crashed } where reasons are the skip lines' texts.
 */
export function countFile(out, code) {
  const text = stripAnsi(out);
  const total = uvuCount(text, "Total");
  const ok = uvuCount(text, "Passed");
  const uvuSkipped = uvuCount(text, "Skipped") ?? 0;
  const reasons = text.split("\n").map((l) => SKIP_LINE.exec(l.trim())?.[1]).filter((r) => r !== undefined);
  if (uvuSkipped) reasons.push(`${uvuSkipped} test(s) skipped with test.skip() (no reason given)`);
  if (total === undefined || ok === undefined) {
    // Crashed before uvu could report: one failure, whatever ran before it.
    return { passed: 0, failed: 1, skipped: 0, reasons, crashed: true };
  }
  // A skip line belongs to a test uvu counted as passed; never count more of them than passed.
  const early = Math.min(reasons.length - (uvuSkipped ? 1 : 0), ok);
  // uvu's Total leaves out test.skip() tests, so every test not passed failed.
  const failed = Math.max(total - ok, code === 0 ? 0 : 1);
  return { passed: ok - early, failed, skipped: early + uvuSkipped, reasons, crashed: false };
}
