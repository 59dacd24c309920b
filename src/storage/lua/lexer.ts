/**
 * The lexical half of the data-file reader (read.ts): a scanner over the raw bytes of a Prosody
 * data file (Lua strings are bytes) that skips whitespace and comments, and reads names, short and
 * long strings with every Lua escape, and numerals, reporting errors with the file and line.
 * read.ts holds the grammar on top of it and the measured reasons for scanning by hand.
 */
import { StorageError } from "../types.js";

// Character classes over bytes.
export const C_SPACE = 1;
export const C_DIGIT = 2;
export const C_HEX = 4;
export const C_IDSTART = 8;
export const C_ID = 16;
export const CLASS = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) CLASS[b] |= C_SPACE;
for (let b = 0x30; b <= 0x39; b++) CLASS[b] |= C_DIGIT | C_HEX | C_ID;
for (let b = 0x41; b <= 0x5a; b++) CLASS[b] |= C_IDSTART | C_ID;
for (let b = 0x61; b <= 0x7a; b++) CLASS[b] |= C_IDSTART | C_ID;
for (let b = 0x41; b <= 0x46; b++) CLASS[b] |= C_HEX;
for (let b = 0x61; b <= 0x66; b++) CLASS[b] |= C_HEX;
CLASS[0x5f] |= C_IDSTART | C_ID;

const hexVal = (c: number): number => (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);

/** Short ASCII strings (keys, mostly) are decoded through this cache. */
const SMALL_CACHE_MAX = 4096;

export class LuaLexer {
  protected pos = 0;
  private scratch = new Uint8Array(256);
  private readonly cache = new Map<number, string[]>();
  private cacheSize = 0;

  protected readonly src: Buffer;

  constructor(
    bytes: Uint8Array,
    private readonly name: string,
  ) {
    this.src = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  // ------------------------------------------------------------------ errors

  protected lineAt(pos: number): number {
    let line = 1;
    const end = Math.min(pos, this.src.length);
    for (let i = 0; i < end; i++) if (this.src[i] === 0x0a) line++;
    return line;
  }

  protected fail(msg: string, at = this.pos): never {
    throw new StorageError(`${this.name}:${this.lineAt(at)}: ${msg}`);
  }

  protected near(at = this.pos): string {
    if (at >= this.src.length) return "end of file";
    const b = this.src[at]!;
    if (CLASS[b]! & C_IDSTART) {
      let e = at;
      while (e < this.src.length && e - at < 40 && CLASS[this.src[e]!]! & C_ID) e++;
      return `'${Buffer.from(this.src.subarray(at, e)).toString("latin1")}'`;
    }
    if (b >= 0x21 && b < 0x7f) return `'${String.fromCharCode(b)}'`;
    return `byte ${b}`;
  }

  // ------------------------------------------------------------------ lexing helpers

  /** Skips whitespace and comments. */
  protected skip(): void {
    const src = this.src;
    const n = src.length;
    let p = this.pos;
    for (;;) {
      while (p < n && CLASS[src[p]!]! & C_SPACE) p++;
      if (p + 1 < n && src[p] === 0x2d && src[p + 1] === 0x2d) {
        p += 2;
        if (p < n && src[p] === 0x5b) {
          const level = this.longBracketLevel(p);
          if (level >= 0) {
            this.pos = p;
            p = this.skipLong(p, level, "comment");
            continue;
          }
        }
        while (p < n && src[p] !== 0x0a && src[p] !== 0x0d) p++;
        continue;
      }
      break;
    }
    this.pos = p;
  }

  /** At `[`: the level of a long bracket `[==[` (number of `=`), or -1 if this is no long bracket. */
  protected longBracketLevel(p: number): number {
    const src = this.src;
    let q = p + 1;
    while (q < src.length && src[q] === 0x3d) q++;
    return q < src.length && src[q] === 0x5b ? q - p - 1 : -1;
  }

  /** Skips a long bracket starting at `p`; returns the position after it. */
  private skipLong(p: number, level: number, what: string): number {
    const [, end] = this.findLongEnd(p, level, what);
    return end;
  }

  /** For a long bracket at `p`: [content start, position after the closing bracket, content end]. */
  private findLongEnd(p: number, level: number, what: string): [number, number, number] {
    const src = this.src;
    const n = src.length;
    const start = p + level + 2;
    let q = start;
    for (;;) {
      const i = src.indexOf(0x5d, q);
      if (i < 0) this.fail(`unfinished long ${what}`, p);
      let k = i + 1;
      while (k < n && src[k] === 0x3d && k - i - 1 < level) k++;
      if (k - i - 1 === level && k < n && src[k] === 0x5d) return [start, k + 1, i];
      q = i + 1;
    }
  }

  protected readName(): string {
    const src = this.src;
    const s = this.pos;
    let p = s + 1;
    while (p < src.length && CLASS[src[p]!]! & C_ID) p++;
    this.pos = p;
    return src.toString("latin1", s, p);
  }

  protected isKeywordAt(word: string): boolean {
    const src = this.src;
    const p = this.pos;
    for (let i = 0; i < word.length; i++) if (src[p + i] !== word.charCodeAt(i)) return false;
    const after = p + word.length;
    return !(after < src.length && CLASS[src[after]!]! & C_ID);
  }

  // ------------------------------------------------------------------ strings

  private decodeRange(s: number, e: number): string {
    const src = this.src;
    const len = e - s;
    let high = 0;
    let h = 0;
    for (let i = s; i < e; i++) {
      const b = src[i]!;
      high |= b;
      h = (Math.imul(h, 31) + b) | 0;
    }
    if (high >= 0x80) return src.toString("utf8", s, e);
    if (len > 20) return src.toString("latin1", s, e);
    return this.shortAscii(s, e, (Math.imul(h, 31) + len) | 0);
  }

  /** Short ASCII strings (keys, mostly) repeat a lot: one JS string per distinct value. */
  private shortAscii(s: number, e: number, h: number): string {
    const src = this.src;
    const len = e - s;
    const bucket = this.cache.get(h);
    if (bucket) {
      outer: for (const cand of bucket) {
        if (cand.length !== len) continue;
        for (let i = 0; i < len; i++) if (cand.charCodeAt(i) !== src[s + i]) continue outer;
        return cand;
      }
    }
    const str = src.toString("latin1", s, e);
    if (this.cacheSize < SMALL_CACHE_MAX) {
      if (bucket) bucket.push(str);
      else this.cache.set(h, [str]);
      this.cacheSize++;
    }
    return str;
  }

  private push(len: number, b: number): number {
    if (len >= this.scratch.length) {
      const bigger = new Uint8Array(this.scratch.length * 2);
      bigger.set(this.scratch);
      this.scratch = bigger;
    }
    this.scratch[len] = b;
    return len + 1;
  }

  protected readShortString(): string {
    const src = this.src;
    const n = src.length;
    const open = this.pos;
    const quote = src[open]!;
    let p = open + 1;
    // Fast path: no escapes (one pass that also hashes, for the short-string cache).
    let h = 0;
    let high = 0;
    while (p < n) {
      const b = src[p]!;
      if (b === quote) {
        this.pos = p + 1;
        const len = p - open - 1;
        if (high >= 0x80) return src.toString("utf8", open + 1, p);
        if (len > 20) return src.toString("latin1", open + 1, p);
        return this.shortAscii(open + 1, p, (Math.imul(h, 31) + len) | 0);
      }
      if (b === 0x5c || b === 0x0a || b === 0x0d) break;
      high |= b;
      h = (Math.imul(h, 31) + b) | 0;
      p++;
    }
    // Slow path: copy bytes, interpreting escapes.
    let len = 0;
    for (let i = open + 1; i < p; i++) len = this.push(len, src[i]!);
    for (;;) {
      if (p >= n) this.fail("unfinished string", open);
      const b = src[p]!;
      if (b === quote) {
        p++;
        break;
      }
      if (b === 0x0a || b === 0x0d) this.fail("unfinished string (line break inside a quoted string)", open);
      if (b !== 0x5c) {
        len = this.push(len, b);
        p++;
        continue;
      }
      p++;
      if (p >= n) this.fail("unfinished string", open);
      const c = src[p]!;
      switch (c) {
        case 0x61: len = this.push(len, 7); p++; break; // \a
        case 0x62: len = this.push(len, 8); p++; break; // \b
        case 0x66: len = this.push(len, 12); p++; break; // \f
        case 0x6e: len = this.push(len, 10); p++; break; // \n
        case 0x72: len = this.push(len, 13); p++; break; // \r
        case 0x74: len = this.push(len, 9); p++; break; // \t
        case 0x76: len = this.push(len, 11); p++; break; // \v
        case 0x5c: case 0x22: case 0x27:
          len = this.push(len, c);
          p++;
          break;
        case 0x0a:
        case 0x0d: {
          // backslash + line break (\n, \r, \r\n or \n\r) = one "\n"
          len = this.push(len, 10);
          p++;
          if (p < n && (src[p] === 0x0a || src[p] === 0x0d) && src[p] !== c) p++;
          break;
        }
        case 0x78: {
          // \xXX: exactly two hex digits
          if (!(p + 2 < n && CLASS[src[p + 1]!]! & C_HEX && CLASS[src[p + 2]!]! & C_HEX)) {
            this.fail("hexadecimal digit expected in \\x escape", p);
          }
          len = this.push(len, (hexVal(src[p + 1]!) << 4) | hexVal(src[p + 2]!));
          p += 3;
          break;
        }
        case 0x7a: {
          // \z: skip the following whitespace, line breaks included
          p++;
          while (p < n && CLASS[src[p]!]! & C_SPACE) p++;
          break;
        }
        case 0x75: {
          // \u{XXX}: a code point up to 2^31-1, written as (extended) UTF-8
          if (src[p + 1] !== 0x7b) this.fail("missing '{' in \\u{xxxx}", p);
          let q = p + 2;
          let cp = 0;
          let digits = 0;
          while (q < n && CLASS[src[q]!]! & C_HEX) {
            cp = cp * 16 + hexVal(src[q]!);
            if (cp > 0x7fffffff) this.fail("UTF-8 value too large", p);
            q++;
            digits++;
          }
          if (digits === 0) this.fail("hexadecimal digit expected in \\u{xxxx}", p);
          if (src[q] !== 0x7d) this.fail("missing '}' in \\u{xxxx}", p);
          len = this.pushUtf8(len, cp);
          p = q + 1;
          break;
        }
        default: {
          if (CLASS[c]! & C_DIGIT) {
            let v = 0;
            let q = p;
            while (q < n && q - p < 3 && CLASS[src[q]!]! & C_DIGIT) v = v * 10 + (src[q++]! - 0x30);
            if (v > 255) this.fail("decimal escape too large", p);
            len = this.push(len, v);
            p = q;
            break;
          }
          this.fail("invalid escape sequence", p);
        }
      }
    }
    this.pos = p;
    return Buffer.from(this.scratch.buffer, 0, len).toString("utf8");
  }

  /** Lua's luaO_utf8esc: up to 6 bytes for values above U+10FFFF. */
  private pushUtf8(len: number, cp: number): number {
    if (cp < 0x80) return this.push(len, cp);
    const bytes: number[] = [];
    let mfb = 0x3f; // largest value that fits in the first byte
    let x = cp;
    do {
      bytes.push(0x80 | (x & 0x3f));
      x = Math.floor(x / 64);
      mfb >>= 1;
    } while (x > mfb);
    bytes.push(((~mfb << 1) & 0xff) | x);
    for (let i = bytes.length - 1; i >= 0; i--) len = this.push(len, bytes[i]!);
    return len;
  }

  protected readLongString(level: number): string {
    const open = this.pos;
    const [start, end, contentEnd] = this.findLongEnd(open, level, "string");
    this.pos = end;
    const src = this.src;
    let s = start;
    // A line break right after the opening bracket is skipped.
    if (s < contentEnd && (src[s] === 0x0a || src[s] === 0x0d)) {
      const c = src[s]!;
      s++;
      if (s < contentEnd && (src[s] === 0x0a || src[s] === 0x0d) && src[s] !== c) s++;
    }
    // Line breaks (\r\n, \n\r, \r) are normalised to \n.
    if (src.subarray(s, contentEnd).indexOf(0x0d) < 0) return this.decodeRange(s, contentEnd);
    let len = 0;
    for (let i = s; i < contentEnd; i++) {
      const b = src[i]!;
      if (b === 0x0a || b === 0x0d) {
        len = this.push(len, 10);
        if (i + 1 < contentEnd && (src[i + 1] === 0x0a || src[i + 1] === 0x0d) && src[i + 1] !== b) i++;
      } else len = this.push(len, b);
    }
    return Buffer.from(this.scratch.buffer, 0, len).toString("utf8");
  }

  // ------------------------------------------------------------------ numbers

  protected readNumber(): number {
    const src = this.src;
    const n = src.length;
    const s = this.pos;
    let p = s;
    // Fast path: a plain decimal integer of up to 15 digits.
    {
      let v = 0;
      while (p < n && p - s < 16 && CLASS[src[p]!]! & C_DIGIT) v = v * 10 + (src[p++]! - 0x30);
      const b = p < n ? src[p]! : 0x20;
      if (p - s < 16 && !(CLASS[b]! & C_ID) && b !== 0x2e) {
        this.pos = p;
        return v;
      }
      p = s;
    }
    let hex = false;
    if (src[p] === 0x30 && (src[p + 1] === 0x78 || src[p + 1] === 0x58)) {
      hex = true;
      p += 2;
    }
    // Like Lua's lexer: take every alphanumeric and '.', plus a sign right after an exponent mark.
    for (;;) {
      if (p >= n) break;
      const b = src[p]!;
      const lower = b | 0x20;
      if ((hex ? lower === 0x70 : lower === 0x65) && (src[p + 1] === 0x2b || src[p + 1] === 0x2d)) {
        p += 2;
        continue;
      }
      if (CLASS[b]! & C_ID || b === 0x2e) {
        p++;
        continue;
      }
      break;
    }
    this.pos = p;
    const text = src.toString("latin1", s, p);
    const value = hex ? parseHexNumeral(text) : parseDecimalNumeral(text);
    if (value === undefined) this.fail(`malformed number near '${text.length > 40 ? text.slice(0, 40) + "…" : text}'`, s);
    return value;
  }
}

const DEC_RE = /^(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const HEX_RE = /^0[xX](?:([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?)(?:[pP]([+-]?[0-9]+))?$/;

function parseDecimalNumeral(text: string): number | undefined {
  // (An integer numeral that does not fit 64 bits is a float in Lua: the same JS number either way.)
  return DEC_RE.test(text) ? Number(text) : undefined;
}

function parseHexNumeral(text: string): number | undefined {
  const m = HEX_RE.exec(text);
  if (!m) return undefined;
  const intDigits = m[1] ?? "";
  const fracDigits = m[2];
  const exp = m[3];
  if (intDigits === "" && (fracDigits === undefined || fracDigits === "")) return undefined;
  if (fracDigits === undefined && exp === undefined) {
    // Hex integer: wraps around modulo 2^64, like Lua.
    return Number(BigInt.asIntN(64, BigInt("0x" + intDigits)));
  }
  let v = 0;
  for (const c of intDigits) v = v * 16 + parseInt(c, 16);
  let scale = 1;
  for (const c of fracDigits ?? "") {
    scale /= 16;
    v += parseInt(c, 16) * scale;
  }
  const e = exp === undefined ? 0 : Number(exp);
  return v * 2 ** e;
}
