/**
 * Reader for Prosody's data files (`return <lua literal>;`), which never executes anything: it
 * accepts exactly the literal subset of Lua 5.4 that a data file can use, and refuses everything
 * else (names, calls, operators other than unary minus and `/`) with a StorageError naming the file
 * and line.
 *
 * Choice of implementation, measured with test/fixtures/internal/bench-read.ts (Node 20, the 2-core
 * dev machine, medians of 7 runs) on a 23.4 MB invite_token.dat holding 50,000 invites written by
 * serialize.ts (the same file for both):
 *
 *   hand-written byte scanner (this file) ..........   267 ms
 *   luaparse 0.3.1 (parse to AST, AST → values) ....  2793 ms  (+18 ms to turn the bytes into the
 *                                                     latin1 string luaparse needs)
 *
 * so the scanner is used (~10× faster): it works on the raw bytes (Lua strings are bytes), builds
 * the values directly with no AST, and shares one JS string per distinct short key.
 * (For reference: fs.readFileSync of the file 8 ms; serialising it 230 ms.)
 *
 * Accepted: optional leading `return` (and `;`s around it), one or more values after it (the first
 * is the result), table constructors with `,`/`;` separators and a trailing separator,
 * `[expr] = v` (string/number/boolean keys), `name = v`, positional items, short strings with
 * every Lua escape (`\a \b \f \n \r \t \v \\ \" \' \ddd \xXX \z \u{XXX}`, backslash-newline),
 * long strings `[[…]]`/`[==[…]==]`, decimal/hex/float/exponent numerals, unary minus, `/`
 * (so `(1/0)`, `(-1/0)`, `(0/0)`), parentheses, `true`/`false`/`nil`, `--` and `--[[ ]]` comments.
 * An empty chunk or `return`/`return nil` yields undefined (Prosody: no data).
 *
 * Values: Lua tables become arrays when they are pure 1..n sequences (n ≥ 1), otherwise objects
 * with string keys (integer/float/boolean keys as their Lua `tostring`, e.g. `[5]` → "5"; when a
 * string key and a number key spell the same, the string key wins). An empty table is `{}`.
 * Strings are decoded from their bytes as UTF-8 (invalid sequences become U+FFFD).
 * Integer numerals outside Lua's 64-bit range are floats (as in Lua); hex integers wrap modulo
 * 2^64 (as in Lua); integers beyond 2^53 lose precision in JS numbers.
 */
import { StorageError } from "../types.js";

/** Lua's own parser gives up at about 200 nested levels (LUAI_MAXCCALLS). */
const MAX_NESTING = 200;

type Key = string | number | boolean;

// Character classes over bytes.
const C_SPACE = 1;
const C_DIGIT = 2;
const C_HEX = 4;
const C_IDSTART = 8;
const C_ID = 16;
const CLASS = new Uint8Array(256);
for (const b of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) CLASS[b] |= C_SPACE;
for (let b = 0x30; b <= 0x39; b++) CLASS[b] |= C_DIGIT | C_HEX | C_ID;
for (let b = 0x41; b <= 0x5a; b++) CLASS[b] |= C_IDSTART | C_ID;
for (let b = 0x61; b <= 0x7a; b++) CLASS[b] |= C_IDSTART | C_ID;
for (let b = 0x41; b <= 0x46; b++) CLASS[b] |= C_HEX;
for (let b = 0x61; b <= 0x66; b++) CLASS[b] |= C_HEX;
CLASS[0x5f] |= C_IDSTART | C_ID;

const RESERVED = new Set([
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
]);

const hexVal = (c: number): number => (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);

/** Short ASCII strings (keys, mostly) are decoded through this cache. */
const SMALL_CACHE_MAX = 4096;

class Reader {
  private pos = 0;
  private scratch = new Uint8Array(256);
  private readonly cache = new Map<number, string[]>();
  private cacheSize = 0;

  private readonly src: Buffer;

  constructor(
    bytes: Uint8Array,
    private readonly name: string,
  ) {
    this.src = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  // ------------------------------------------------------------------ errors

  private lineAt(pos: number): number {
    let line = 1;
    const end = Math.min(pos, this.src.length);
    for (let i = 0; i < end; i++) if (this.src[i] === 0x0a) line++;
    return line;
  }

  fail(msg: string, at = this.pos): never {
    throw new StorageError(`${this.name}:${this.lineAt(at)}: ${msg}`);
  }

  private near(at = this.pos): string {
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
  private skip(): void {
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
  private longBracketLevel(p: number): number {
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

  private readName(): string {
    const src = this.src;
    const s = this.pos;
    let p = s + 1;
    while (p < src.length && CLASS[src[p]!]! & C_ID) p++;
    this.pos = p;
    return src.toString("latin1", s, p);
  }

  private isKeywordAt(word: string): boolean {
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

  private readShortString(): string {
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

  private readLongString(level: number): string {
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

  private readNumber(): number {
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

  // ------------------------------------------------------------------ grammar

  /** chunk := {';'} [ 'return' [explist] [';'] ] {';'} EOF   (a bare value is accepted too) */
  parseChunk(): unknown {
    this.skipSemicolons();
    if (this.pos >= this.src.length) return undefined;
    let value: unknown;
    const hasReturn = this.isKeywordAt("return");
    if (hasReturn) {
      this.pos += 6;
      this.skip();
      if (this.pos >= this.src.length || this.src[this.pos] === 0x3b) value = undefined;
      else {
        value = this.parseExpr(0);
        this.skip();
        while (this.src[this.pos] === 0x2c) {
          this.pos++;
          this.parseExpr(0);
          this.skip();
        }
      }
    } else {
      value = this.parseExpr(0);
    }
    this.skipSemicolons();
    if (this.pos < this.src.length) {
      this.fail(`unexpected ${this.near()} after the ${hasReturn ? "returned value" : "value"} (only one literal value is allowed)`);
    }
    return value;
  }

  private skipSemicolons(): void {
    this.skip();
    while (this.src[this.pos] === 0x3b) {
      this.pos++;
      this.skip();
    }
  }

  /** expr := unary { '/' unary }   (`/` only between numbers, as float division) */
  private parseExpr(depth: number): unknown {
    if (depth > MAX_NESTING) this.fail("data nested too deeply");
    let v = this.parseUnary(depth);
    this.skip();
    while (this.src[this.pos] === 0x2f && this.src[this.pos + 1] !== 0x2f) {
      const at = this.pos;
      this.pos++;
      const r = this.parseUnary(depth);
      if (typeof v !== "number" || typeof r !== "number") this.fail("'/' is only allowed between numbers", at);
      v = v / r;
      this.skip();
    }
    const b = this.src[this.pos];
    if (b !== undefined) {
      if (b === 0x28 || b === 0x22 || b === 0x27 || b === 0x7b || b === 0x5b || b === 0x3a || b === 0x2e && this.src[this.pos + 1] !== 0x2e) {
        this.fail(`unexpected ${this.near()} after a value (calls and indexing are not allowed in a data file)`);
      }
      if (isOperatorByte(b)) this.fail(`operator ${this.near()} is not allowed in a data file`);
    }
    return v;
  }

  private parseUnary(depth: number): unknown {
    if (depth > MAX_NESTING) this.fail("data nested too deeply");
    this.skip();
    const src = this.src;
    if (this.pos >= src.length) this.fail("unexpected end of file (value expected)");
    const b = src[this.pos]!;
    switch (b) {
      case 0x7b: // {
        return this.parseTable(depth + 1);
      case 0x22:
      case 0x27:
        return this.readShortString();
      case 0x2d: {
        // unary minus (a "--" comment was skipped already)
        const at = this.pos;
        this.pos++;
        const v = this.parseUnary(depth + 1);
        if (typeof v !== "number") this.fail("unary minus is only allowed before a number", at);
        return -v;
      }
      case 0x28: {
        // ( expr )
        this.pos++;
        const v = this.parseExpr(depth + 1);
        this.skip();
        if (src[this.pos] !== 0x29) this.fail(`')' expected near ${this.near()}`);
        this.pos++;
        return v;
      }
      case 0x5b: {
        const level = this.longBracketLevel(this.pos);
        if (level < 0) this.fail(`unexpected '[' (value expected)`);
        return this.readLongString(level);
      }
      case 0x2e: {
        if (CLASS[src[this.pos + 1] ?? 0]! & C_DIGIT) return this.readNumber();
        this.fail(`unexpected ${this.near()} (value expected)`);
      }
    }
    if (CLASS[b]! & C_DIGIT) return this.readNumber();
    if (CLASS[b]! & C_IDSTART) {
      const at = this.pos;
      const name = this.readName();
      if (name === "true") return true;
      if (name === "false") return false;
      if (name === "nil") return undefined;
      if (RESERVED.has(name)) this.fail(`'${name}' is not allowed in a data file (only literal values are)`, at);
      this.fail(`name '${name}' is not allowed in a data file (only literal values are; no variables or calls)`, at);
    }
    this.fail(`unexpected ${this.near()} (value expected)`);
  }

  /** '{' [ field { sep field } [sep] ] '}' */
  private parseTable(depth: number): unknown {
    if (depth > MAX_NESTING) this.fail("data nested too deeply");
    const src = this.src;
    const open = this.pos;
    this.pos++; // {
    let obj: Record<string, unknown> | null = null; // string keys
    let other: Map<number | boolean, unknown> | null = null; // number/boolean keys
    let arr: unknown[] | null = null; // positional items (undefined = nil)
    let holes = false;
    for (;;) {
      this.skip();
      if (this.pos >= src.length) this.fail("unfinished table ('}' expected)", open);
      let b = src[this.pos]!;
      if (b === 0x7d) {
        this.pos++;
        break;
      }
      let key: Key | undefined;
      let keyed = false;
      if (b === 0x5b && this.longBracketLevel(this.pos) < 0) {
        // [expr] = value
        const at = this.pos;
        this.pos++;
        const k = this.parseExpr(depth + 1);
        this.skip();
        if (src[this.pos] !== 0x5d) this.fail(`']' expected near ${this.near()}`);
        this.pos++;
        if (k === undefined) this.fail("table index is nil", at);
        if (typeof k === "number") {
          if (k !== k) this.fail("table index is NaN", at);
        } else if (typeof k !== "string" && typeof k !== "boolean") {
          this.fail("only string, number and boolean table keys are supported", at);
        }
        key = k as Key;
        keyed = true;
        this.expectEquals();
      } else if (CLASS[b]! & C_IDSTART) {
        // name = value, or a positional true/false/nil (anything else is refused by parseUnary)
        const save = this.pos;
        const name = this.readName();
        this.skip();
        if (src[this.pos] === 0x3d && src[this.pos + 1] !== 0x3d && !RESERVED.has(name)) {
          this.pos++;
          key = name;
          keyed = true;
        } else this.pos = save;
      }
      const value = this.parseExpr(depth + 1);
      if (keyed) {
        if (typeof key === "string") {
          obj ??= {};
          if (value === undefined) delete obj[key];
          else if (key === "__proto__") Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
          else obj[key] = value;
        } else {
          other ??= new Map();
          let k = key as number | boolean;
          if (typeof k === "number" && Object.is(k, -0)) k = 0;
          if (value === undefined) other.delete(k);
          else other.set(k, value);
        }
      } else {
        arr ??= [];
        if (value === undefined) holes = true;
        arr.push(value);
      }
      this.skip();
      b = src[this.pos] ?? -1;
      if (b === 0x2c || b === 0x3b) {
        this.pos++;
        continue;
      }
      if (b === 0x7d) {
        this.pos++;
        break;
      }
      if (this.pos >= src.length) this.fail("unfinished table ('}' expected)", open);
      this.fail(`'}' expected (to close '{' at line ${this.lineAt(open)}) near ${this.near()}`);
    }

    // Common cases first.
    if (arr === null && other === null) return obj ?? {};
    if (obj === null && other === null && !holes) return arr;
    return buildMixed(obj, other, arr);
  }

  private expectEquals(): void {
    this.skip();
    if (this.src[this.pos] !== 0x3d || this.src[this.pos + 1] === 0x3d) this.fail(`'=' expected near ${this.near()}`);
    this.pos++;
  }
}

function isOperatorByte(b: number): boolean {
  // + - * / (as //) % ^ # & ~ | < > and .. (concatenation)
  return (
    b === 0x2b || b === 0x2d || b === 0x2a || b === 0x2f || b === 0x25 || b === 0x5e || b === 0x23 || b === 0x26 ||
    b === 0x7e || b === 0x7c || b === 0x3c || b === 0x3e || b === 0x2e
  );
}

/** A table with positional items and/or non-string keys, resolved as Lua would build it. */
function buildMixed(
  obj: Record<string, unknown> | null,
  other: Map<number | boolean, unknown> | null,
  arr: unknown[] | null,
): unknown {
  const nums = new Map<number | boolean, unknown>(other ?? []);
  // Positional items are stored last (Lua's SETLIST runs after the keyed fields), nil ones clear.
  if (arr) {
    for (let i = 0; i < arr.length; i++) {
      if (arr[i] === undefined) nums.delete(i + 1);
      else nums.set(i + 1, arr[i]);
    }
  }
  const hasStrings = obj !== null && Object.keys(obj).length > 0;
  if (!hasStrings && nums.size > 0) {
    let seq = true;
    for (const k of nums.keys()) {
      if (typeof k !== "number" || !Number.isInteger(k) || k < 1 || k > nums.size) {
        seq = false;
        break;
      }
    }
    if (seq) {
      const out: unknown[] = new Array(nums.size);
      for (const [k, v] of nums) out[(k as number) - 1] = v;
      return out;
    }
  }
  const out: Record<string, unknown> = {};
  const put = (k: string, v: unknown) => {
    if (k === "__proto__") Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    else out[k] = v;
  };
  for (const [k, v] of nums) put(keyString(k), v);
  if (obj) for (const k of Object.keys(obj)) put(k, obj[k]);
  return out;
}

/** Lua's tostring of a non-string key. */
function keyString(k: number | boolean): string {
  if (typeof k === "boolean") return k ? "true" : "false";
  if (Number.isInteger(k) && Math.abs(k) < 2 ** 63) return Number.isSafeInteger(k) ? String(k) : BigInt(k).toString();
  if (k === Infinity) return "inf";
  if (k === -Infinity) return "-inf";
  // Lua prints floats with %.14g
  return String(Number(k.toPrecision(14)));
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

/**
 * Parses the bytes of a Prosody data file. `name` (the file path) is used in error messages.
 * Returns the value the file returns (undefined for none/nil); throws StorageError
 * `"<name>:<line>: <reason>"` for anything that is not a plain Lua literal.
 */
export function readLuaData(bytes: Uint8Array, name: string): unknown {
  const reader = new Reader(bytes, name);
  try {
    return reader.parseChunk();
  } catch (err) {
    if (err instanceof StorageError) throw err;
    if (err instanceof RangeError) throw new StorageError(`${name}: cannot read data file: ${err.message}`);
    throw err;
  }
}

/** Convenience: parse Lua data given as a JS string (encoded as UTF-8 first). */
export function readLuaString(text: string, name = "(string)"): unknown {
  return readLuaData(Buffer.from(text, "utf8"), name);
}
