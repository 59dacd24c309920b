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
 *   hand-written byte scanner (this + lexer.ts) ....   267 ms
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
 *
 * The scanner (bytes → names, strings, numerals) is lexer.ts; this file is the grammar and the
 * building of values.
 */
import { StorageError } from "../types.js";
import { CLASS, C_DIGIT, C_IDSTART, LuaLexer } from "./lexer.js";
import type { EntryIndex } from "./serialize.js";

const isArrayIndex = (k: string) => /^(?:0|[1-9][0-9]{0,9})$/.test(k) && Number(k) < 4294967295;

/** Lua's own parser gives up at about 200 nested levels (LUAI_MAXCCALLS). */
const MAX_NESTING = 200;

type Key = string | number | boolean;

const RESERVED = new Set([
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
]);

class Reader extends LuaLexer {
  /**
   * readLuaDataIndexed: true until the returned table's parse starts; then its members' places
   * (undefined once it holds a member the index cannot describe).
   */
  wantIndex = false;
  index: EntryIndex | undefined;

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
        this.wantIndex &&= this.src[this.pos] === 0x7b; // `return {` : that table is the value
        value = this.parseExpr(0);
        this.skip();
        while (this.src[this.pos] === 0x2c) {
          this.pos++;
          this.parseExpr(0);
          this.skip();
        }
      }
    } else {
      this.wantIndex = false;
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
    // The returned table of readLuaDataIndexed: each member from just after the separator before
    // it (the "{" for the first) through its own separator.
    let idx: EntryIndex | undefined;
    if (this.wantIndex) {
      this.wantIndex = false;
      idx = this.index = new Map();
    }
    let memberStart = this.pos;
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
      if (idx && (typeof key !== "string" || value === undefined || idx.has(key) || isArrayIndex(key))) idx = this.index = undefined;
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
        if (idx) {
          idx.set(key as string, [memberStart, this.pos]);
          memberStart = this.pos;
        }
        continue;
      }
      if (b === 0x7d) {
        this.pos++;
        if (idx) idx = this.index = undefined; // a member without its separator: nothing can follow it as is
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

/**
 * readLuaData, and where each member of the returned table lies in `bytes` (an EntryIndex, as
 * serialize.ts makes for the files it writes), so that internal/splice.ts can change a few members
 * of a file it did not write in this process without serialising it all again. A member's range
 * runs from just after the separator before it (the newline in a file we wrote: the same ranges as
 * serialize.ts gives) through its own ";" or ",". `index` is undefined unless the chunk is
 * `return {` … with string keys only, none of them an array index, none twice or nil, every member
 * followed by a separator.
 */
export function readLuaDataIndexed(bytes: Uint8Array, name: string): { value: unknown; index: EntryIndex | undefined } {
  const reader = new Reader(bytes, name);
  reader.wantIndex = true;
  try {
    const value = reader.parseChunk();
    return { value, index: reader.index };
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
