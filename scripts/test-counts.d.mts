export interface FileCounts {
  passed: number;
  failed: number;
  skipped: number;
  /** The skip lines' texts ("<suite> › <test>: <reason>"), then one line for test.skip() tests. */
  reasons: string[];
  /** Tests that ended without one assertion and did not skip ("<suite> › <test>"); counted as failed. */
  empty: string[];
  /** No uvu summary: the file crashed (or was killed) before it. */
  crashed: boolean;
}
export function countFile(out: string, code: number | null): FileCounts;
