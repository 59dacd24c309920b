/**
 * A tokenizer for the declarative subset of Lua read by fast-path.ts. It follows Lua's lexer
 * where the subset needs it (comments, short and long strings, escapes, numbers, newline
 * counting) and throws NotDeclarative for anything else, which sends the file to the VM.
 */

/** Thrown when a file leaves the declarative subset; the caller falls back to the Lua VM. */
export class NotDeclarative extends Error {}

export type Token =
  | { type: "name"; value: string; line: number; endLine: number }
  | { type: "string"; value: string; line: number; endLine: number }
  | { type: "number"; value: number; float: boolean; line: number; endLine: number }
  | { type: "punct"; value: string; line: number; endLine: number }
  | { type: "eof"; value: ""; line: number; endLine: number };

const KEYWORDS = new Set([
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
]);
export function isKeyword(name: string): boolean {
  return KEYWORDS.has(name);
}

const PUNCT = new Set(["=", "{", "}", "[", "]", "(", ")", ",", ";", "-"]);
const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', "'": "'",
};
const DECIMAL = /(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/y;
const HEX = /0[xX][0-9a-fA-F]+/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER_TAIL = /[A-Za-z0-9_.]/;
const REST_OF_LINE = /[^\r\n]*/y;
const PLAIN_IN_DOUBLE = /[^"\\\r\n]+/y;
const PLAIN_IN_SINGLE = /[^'\\\r\n]+/y;
const PLAIN_IN_LONG = /[^\]\r\n]*/y;
/** fengari's integers are 32-bit: a larger hex literal would wrap there, so leave it to the VM. */
const MAX_HEX = 0x7fffffff;

function bail(): never {
  throw new NotDeclarative();
}

export class Scanner {
  private pos = 0;
  line = 1;

  constructor(private readonly src: string) {}

  /** Skips a newline sequence (\n, \r, \r\n or \n\r counts once, as in Lua). */
  private newline(): void {
    const c = this.src[this.pos++];
    const d = this.src[this.pos];
    if ((d === "\n" || d === "\r") && d !== c) this.pos++;
    this.line++;
  }

  /** Level of a long bracket starting at pos ("[", "[=[", …), or -1. Does not consume. */
  private longBracketLevel(): number {
    let i = this.pos + 1;
    while (this.src[i] === "=") i++;
    return this.src[i] === "[" ? i - this.pos - 1 : -1;
  }

  /** Reads a long string/comment body; pos is at the opening "[". */
  private longString(level: number): string {
    this.pos += level + 2;
    if (this.src[this.pos] === "\n" || this.src[this.pos] === "\r") this.newline();
    const close = "]" + "=".repeat(level) + "]";
    let out = "";
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined) bail();
      if (c === "\n" || c === "\r") {
        this.newline();
        out += "\n";
      } else if (c === "]" && this.src.startsWith(close, this.pos)) {
        this.pos += close.length;
        return out;
      } else {
        PLAIN_IN_LONG.lastIndex = this.pos;
        PLAIN_IN_LONG.test(this.src);
        const end = Math.max(PLAIN_IN_LONG.lastIndex, this.pos + 1);
        out += this.src.slice(this.pos, end);
        this.pos = end;
      }
    }
  }

  private shortString(quoteChar: string): string {
    this.pos++;
    let out = "";
    for (;;) {
      const c = this.src[this.pos];
      if (c === undefined || c === "\n" || c === "\r") bail();
      if (c === quoteChar) {
        this.pos++;
        return out;
      }
      if (c !== "\\") {
        const plain = quoteChar === '"' ? PLAIN_IN_DOUBLE : PLAIN_IN_SINGLE;
        plain.lastIndex = this.pos;
        plain.test(this.src);
        out += this.src.slice(this.pos, plain.lastIndex);
        this.pos = plain.lastIndex;
        continue;
      }
      const e = this.src[++this.pos];
      if (e !== undefined && e in SIMPLE_ESCAPES) {
        out += SIMPLE_ESCAPES[e];
        this.pos++;
      } else if (e === "\n" || e === "\r") {
        this.newline();
        out += "\n";
      } else if (e === "z") {
        this.pos++;
        for (let s = this.src[this.pos]; s !== undefined && /[ \t\v\f\r\n]/.test(s); s = this.src[this.pos]) {
          if (s === "\n" || s === "\r") this.newline();
          else this.pos++;
        }
      } else if (e === "x") {
        const hex = /^[0-9a-fA-F]{2}/.exec(this.src.slice(this.pos + 1, this.pos + 3));
        if (!hex) bail();
        out += byte(parseInt(hex[0], 16));
        this.pos += 3;
      } else if (e !== undefined && e >= "0" && e <= "9") {
        const dec = /^[0-9]{1,3}/.exec(this.src.slice(this.pos, this.pos + 3))!;
        out += byte(Number(dec[0]));
        this.pos += dec[0].length;
      } else if (e === "u") {
        const m = /^\{([0-9a-fA-F]+)\}/.exec(this.src.slice(this.pos + 1, this.pos + 12));
        if (!m) bail();
        const cp = parseInt(m[1], 16);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) bail();
        out += String.fromCodePoint(cp);
        this.pos += m[0].length + 1;
      } else {
        bail();
      }
    }
  }

  /** A numeral; `float` as Lua types it (matters only for the sign of a negated zero). */
  private number(): { value: number; float: boolean } {
    HEX.lastIndex = this.pos;
    let m = HEX.exec(this.src);
    let value: number;
    let float = false;
    if (m) {
      value = parseInt(m[0].slice(2), 16);
      if (value > MAX_HEX) bail();
    } else {
      DECIMAL.lastIndex = this.pos;
      m = DECIMAL.exec(this.src);
      if (!m) bail();
      value = Number(m[0]);
      float = /[.eE]/.test(m[0]);
    }
    this.pos += m[0].length;
    if (NUMBER_TAIL.test(this.src[this.pos] ?? "")) bail();
    return { value, float };
  }

  next(): Token {
    const src = this.src;
    for (;;) {
      const c = src[this.pos];
      if (c === " " || c === "\t" || c === "\v" || c === "\f") {
        this.pos++;
      } else if (c === "\n" || c === "\r") {
        this.newline();
      } else if (c === "-" && src[this.pos + 1] === "-") {
        this.pos += 2;
        const level = src[this.pos] === "[" ? this.longBracketLevel() : -1;
        if (level >= 0) {
          this.longString(level);
        } else {
          REST_OF_LINE.lastIndex = this.pos;
          REST_OF_LINE.test(src);
          this.pos = REST_OF_LINE.lastIndex;
        }
      } else {
        break;
      }
    }
    const line = this.line;
    const c = src[this.pos];
    const token = <T extends Token["type"]>(type: T, value: unknown) =>
      ({ type, value, line, endLine: this.line }) as Token;
    if (c === undefined) return token("eof", "");
    if (c === '"' || c === "'") return token("string", this.shortString(c));
    if (c === "[") {
      const level = this.longBracketLevel();
      if (level >= 0) return token("string", this.longString(level));
      if (src[this.pos + 1] === "=") bail();
    }
    if ((c >= "0" && c <= "9") || (c === "." && /[0-9]/.test(src[this.pos + 1] ?? ""))) {
      const { value, float } = this.number();
      return { type: "number", value, float, line, endLine: this.line };
    }
    NAME.lastIndex = this.pos;
    const name = NAME.exec(src);
    if (name) {
      this.pos += name[0].length;
      return token("name", name[0]);
    }
    if (PUNCT.has(c)) {
      if (c === "=" && src[this.pos + 1] === "=") bail();
      this.pos++;
      return token("punct", c);
    }
    return bail();
  }
}

/** A byte from a \x or \ddd escape; only ASCII keeps both paths' string decoding identical. */
function byte(value: number): string {
  if (value > 0x7f) bail();
  return String.fromCharCode(value);
}
