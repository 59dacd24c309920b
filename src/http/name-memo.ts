/**
 * A memo for the HTTP layer's name conversions (raw header name → Prosody key, key → Title-Case),
 * which run for every header of every request and response and see the same few names again and
 * again. Kept at module level on purpose: a conversion's result depends only on its argument, so
 * sharing it between runtimes in one process cannot carry anything from one to the other.
 * Bounded in entries and in the length of the names kept: header names come from clients, and
 * long made-up ones must not pin memory (at most maxEntries × maxLength characters, twice).
 */
export class NameMemo {
  private readonly memo = new Map<string, string>();

  constructor(
    private readonly convert: (name: string) => string,
    private readonly maxEntries: number,
    private readonly maxLength = 64,
  ) {}

  get(name: string): string {
    let out = this.memo.get(name);
    if (out === undefined) {
      out = this.convert(name);
      if (name.length <= this.maxLength && this.memo.size < this.maxEntries) this.memo.set(name, out);
    }
    return out;
  }

  /** Names kept (for tests). */
  get size(): number {
    return this.memo.size;
  }
}
