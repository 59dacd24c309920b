/**
 * A file's bytes as a list of buffers, so that a change to a big data file is written and kept
 * without copying the unchanged bytes into a new buffer: a splice (splice.ts) takes views of the
 * old parts and adds the few new ones. Copying 35 MB (100k invites) on every write cost more than
 * the write itself, and the garbage collector ran after each such allocation.
 */

/** Past this many parts a rope is flattened once (writev and lookups stay cheap). */
const MAX_PARTS = 512;

export class Rope {
  /** Where each part starts. */
  private readonly starts: number[] = [];
  readonly length: number;

  private constructor(readonly parts: readonly Buffer[]) {
    let at = 0;
    for (const p of parts) {
      this.starts.push(at);
      at += p.length;
    }
    this.length = at;
  }

  static of(buf: Buffer): Rope {
    return new Rope([buf]);
  }

  /** The parts in order (empty ones left out), flattened into one when there are too many. */
  static from(parts: Buffer[]): Rope {
    const kept = parts.filter((p) => p.length > 0);
    return new Rope(kept.length > MAX_PARTS ? [Buffer.concat(kept)] : kept);
  }

  /** Views of the bytes [from, to). */
  pieces(from: number, to: number): Buffer[] {
    const out: Buffer[] = [];
    if (from >= to) return out;
    for (let i = this.partAt(from); i < this.parts.length && this.starts[i]! < to; i++) {
      const s = this.starts[i]!;
      const p = this.parts[i]!;
      out.push(p.subarray(Math.max(0, from - s), Math.min(p.length, to - s)));
    }
    return out;
  }

  /** Whether these bytes are exactly `buf`. */
  equals(buf: Buffer): boolean {
    if (buf.length !== this.length) return false;
    for (let i = 0; i < this.parts.length; i++) {
      const s = this.starts[i]!;
      if (!this.parts[i]!.equals(buf.subarray(s, s + this.parts[i]!.length))) return false;
    }
    return true;
  }

  /** Whether the bytes end with `tail`. */
  endsWith(tail: Buffer): boolean {
    return this.length >= tail.length && Buffer.concat(this.pieces(this.length - tail.length, this.length)).equals(tail);
  }

  /** The bytes as one buffer (a copy unless there is one part). */
  flat(): Buffer {
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts as Buffer[]);
  }

  /** The index of the part holding byte `at` (binary search). */
  private partAt(at: number): number {
    let lo = 0;
    let hi = this.parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}
