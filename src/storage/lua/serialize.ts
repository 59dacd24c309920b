/**
 * Lua literal output in the exact byte format of Prosody's util/serialization.lua with its default
 * options (the format util/datamanager.lua writes; spec/prosody-model.md §2.4):
 *
 * - tables: `{`, then per entry "\n" + depth TABs + item + ";", the last separator being ";\n"
 *   followed by depth-1 TABs, then `}`; an empty table is `{}`; the top level is depth 1;
 * - JS arrays become positional items; object members become `["key"] = value` (JS keys are
 *   strings, so every key is written bracketed and quoted); members whose value is undefined/null
 *   are left out (a Lua table cannot hold nil). Order: insertion order of the object (Prosody's is
 *   hash order, which is neither reproducible nor significant);
 * - strings: double-quoted, over their UTF-8 bytes: `\a \b \f \n \r \t \v \\ \" \'`, `\ddd`
 *   (always three decimal digits) for the other bytes 0–31 and 127–255, everything else raw;
 * - numbers: integers (a JS integer within Lua's 64-bit range) as `%d`, others as C's `%.18g`
 *   (correctly rounded, ties to even, like glibc), `(1/0)`, `(-1/0)`, `(0/0)`;
 * - booleans `true`/`false`, undefined/null `nil`;
 * - a table met twice (cycle or shared sub-table), nesting deeper than 127 tables, functions,
 *   symbols and class instances are refused with a SerializeError (Prosody: "Can't serialize …").
 */

export class SerializeError extends TypeError {
  override name = "SerializeError";
}

const MAX_DEPTH = 127;

/**
 * Where each member of a serialised top-level table (an object, not an array) lies in the output:
 * key → [start, end), from the newline before the member through its ";". In member order.
 */
export type EntryIndex = Map<string, [number, number]>;

/** Escape sequence for each byte value that needs one (empty string: written raw). */
const ESCAPES: string[] = (() => {
  const t: string[] = new Array(256).fill("");
  for (let b = 0; b < 256; b++) {
    if (b < 32 || b >= 127) t[b] = "\\" + String(b).padStart(3, "0");
  }
  const named: [number, string][] = [
    [7, "\\a"],
    [8, "\\b"],
    [12, "\\f"],
    [10, "\\n"],
    [13, "\\r"],
    [9, "\\t"],
    [11, "\\v"],
    [92, "\\\\"],
    [34, '\\"'],
    [39, "\\'"],
  ];
  for (const [b, e] of named) t[b] = e;
  return t;
})();

function escapeCodePoint(cp: number): string {
  // UTF-8 bytes of cp, each as its escape (every byte of a multi-byte sequence is >= 0x80).
  if (cp < 0x800) return ESCAPES[0xc0 | (cp >> 6)]! + ESCAPES[0x80 | (cp & 63)]!;
  if (cp < 0x10000) return ESCAPES[0xe0 | (cp >> 12)]! + ESCAPES[0x80 | ((cp >> 6) & 63)]! + ESCAPES[0x80 | (cp & 63)]!;
  return (
    ESCAPES[0xf0 | (cp >> 18)]! + ESCAPES[0x80 | ((cp >> 12) & 63)]! + ESCAPES[0x80 | ((cp >> 6) & 63)]! + ESCAPES[0x80 | (cp & 63)]!
  );
}

/** A JS string as a Lua string literal (its UTF-8 bytes; a lone surrogate is written as U+FFFD). */
export function quoteString(s: string): string {
  let out = '"';
  let start = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c >= 32 && c !== 127 && c !== 34 && c !== 39 && c !== 92) continue;
      if (i > start) out += s.slice(start, i);
      out += ESCAPES[c]!;
      start = i + 1;
      continue;
    }
    if (i > start) out += s.slice(start, i);
    let cp = c;
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else cp = 0xfffd;
    } else if (c >= 0xdc00 && c <= 0xdfff) cp = 0xfffd;
    out += escapeCodePoint(cp);
    start = i + 1;
  }
  if (start === 0) return '"' + s + '"';
  if (start < n) out += s.slice(start);
  return out + '"';
}

const TWO63 = 2 ** 63;
const P = 18; // %.18g

/** C's `%.18g` of a finite non-zero double, exactly (round half to even on the exact binary value). */
function formatG18(x: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const neg = hi >>> 31 === 1;
  const bexp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e2: number;
  if (bexp === 0) e2 = -1074;
  else {
    mant |= 1n << 52n;
    e2 = bexp - 1075;
  }
  // value = mant * 2^e2 = digits * 10^(point - digits.length)
  let digits: string;
  let point: number; // position of the decimal point from the left of `digits`
  if (e2 >= 0) {
    digits = (mant << BigInt(e2)).toString();
    point = digits.length;
  } else {
    digits = (mant * 5n ** BigInt(-e2)).toString();
    point = digits.length + e2;
  }
  // Drop trailing zeros (they do not change rounding), then round to P significant digits.
  let end = digits.length;
  while (end > 1 && digits.charCodeAt(end - 1) === 48) end--;
  digits = digits.slice(0, end);
  if (digits.length > P) {
    const next = digits.charCodeAt(P) - 48;
    const restNonZero = digits.length > P + 1; // trailing zeros were stripped: any rest is non-zero
    let head = digits.slice(0, P);
    const odd = (head.charCodeAt(P - 1) - 48) % 2 === 1;
    if (next > 5 || (next === 5 && (restNonZero || odd))) {
      head = (BigInt(head) + 1n).toString();
      if (head.length > P) {
        head = head.slice(0, P);
        point++;
      }
    }
    digits = head;
  }
  const X = point - 1; // decimal exponent in d.ddd × 10^X
  let body: string;
  if (X < P && X >= -4) {
    if (X >= 0) {
      const intPart = digits.length > X + 1 ? digits.slice(0, X + 1) : digits.padEnd(X + 1, "0");
      let frac = digits.length > X + 1 ? digits.slice(X + 1) : "";
      frac = frac.replace(/0+$/, "");
      body = frac ? intPart + "." + frac : intPart;
    } else {
      body = "0." + "0".repeat(-X - 1) + digits.replace(/0+$/, "");
    }
  } else {
    const frac = digits.slice(1).replace(/0+$/, "");
    const ax = Math.abs(X);
    body = digits[0]! + (frac ? "." + frac : "") + "e" + (X < 0 ? "-" : "+") + (ax < 10 ? "0" + ax : String(ax));
  }
  return neg ? "-" + body : body;
}

/** A number as util/serialization writes it (integers `%d`, floats `%.18g`, `(1/0)` …). */
export function formatNumber(n: number): string {
  if (Number.isInteger(n) && n >= -TWO63 && n < TWO63) {
    return Number.isSafeInteger(n) ? String(n) : BigInt(n).toString();
  }
  if (n !== n) return "(0/0)";
  if (n === Infinity) return "(1/0)";
  if (n === -Infinity) return "(-1/0)";
  return formatG18(n);
}

function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (typeof v === "object" && v !== null) return (v as object).constructor?.name ?? "object";
  return typeof v;
}

/** Escape bytes per byte value (empty: written raw), as byte arrays. */
const ESCAPE_BYTES: (Uint8Array | null)[] = ESCAPES.map((e) => (e ? Buffer.from(e, "latin1") : null));

const TAB = 9;
/** Any UTF-16 unit that is not written raw. */
const NEEDS_ESCAPE = /[^\x20\x21\x23-\x26\x28-\x5b\x5d-\x7e]/;
const NL = 10;

/**
 * Appends the output as bytes. Everything the serializer writes is ASCII (bytes >= 127 are
 * escaped), so the result converts to a JS string 1:1 through latin1.
 */
class Writer {
  buf: Buffer = Buffer.allocUnsafe(4096);
  len = 0;
  private readonly seen = new Set<object>();

  private grow(extra: number): void {
    let size = this.buf.length * 2;
    while (size < this.len + extra) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** `s` must be ASCII. */
  ascii(s: string): void {
    const n = s.length;
    if (this.len + n > this.buf.length) this.grow(n);
    if (n > 16) this.len += this.buf.write(s, this.len, "latin1");
    else {
      const buf = this.buf;
      let len = this.len;
      for (let i = 0; i < n; i++) buf[len++] = s.charCodeAt(i);
      this.len = len;
    }
  }

  private byte(b: number): void {
    if (this.len + 1 > this.buf.length) this.grow(1);
    this.buf[this.len++] = b;
  }

  private tabs(d: number): void {
    if (this.len + d > this.buf.length) this.grow(d);
    const buf = this.buf;
    let len = this.len;
    for (let i = 0; i < d; i++) buf[len++] = TAB;
    this.len = len;
  }

  private escape(b: number): void {
    const e = ESCAPE_BYTES[b]!;
    if (this.len + e.length > this.buf.length) this.grow(e.length);
    this.buf.set(e, this.len);
    this.len += e.length;
  }

  string(s: string): void {
    const n = s.length;
    if (n > 12 && !NEEDS_ESCAPE.test(s)) {
      if (this.len + n + 2 > this.buf.length) this.grow(n + 2);
      this.buf[this.len++] = 34;
      this.len += this.buf.write(s, this.len, "latin1");
      this.buf[this.len++] = 34;
      return;
    }
    // Worst case per UTF-16 unit: 3 UTF-8 bytes of 4 escape bytes each.
    if (this.len + n * 12 + 2 > this.buf.length) this.grow(n * 12 + 2);
    let buf = this.buf;
    let len = this.len;
    buf[len++] = 34;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) {
        if (c >= 32 && c !== 127 && c !== 34 && c !== 39 && c !== 92) {
          buf[len++] = c;
          continue;
        }
        const e = ESCAPE_BYTES[c]!;
        buf.set(e, len);
        len += e.length;
        continue;
      }
      let cp = c;
      if (c >= 0xd800 && c <= 0xdbff) {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (d >= 0xdc00 && d <= 0xdfff) {
          cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        } else cp = 0xfffd;
      } else if (c >= 0xdc00 && c <= 0xdfff) cp = 0xfffd;
      this.len = len;
      if (cp < 0x800) {
        this.escape(0xc0 | (cp >> 6));
      } else if (cp < 0x10000) {
        this.escape(0xe0 | (cp >> 12));
        this.escape(0x80 | ((cp >> 6) & 63));
      } else {
        this.escape(0xf0 | (cp >> 18));
        this.escape(0x80 | ((cp >> 12) & 63));
        this.escape(0x80 | ((cp >> 6) & 63));
      }
      this.escape(0x80 | (cp & 63));
      len = this.len;
      buf = this.buf;
    }
    buf[len++] = 34;
    this.len = len;
  }

  /** A non-table value; false when `v` is a table (object/array). */
  scalar(v: unknown): boolean {
    switch (typeof v) {
      case "string":
        this.string(v);
        return true;
      case "number":
        this.ascii(formatNumber(v));
        return true;
      case "boolean":
        this.ascii(v ? "true" : "false");
        return true;
      case "bigint":
        this.ascii(v >= -(2n ** 63n) && v < 2n ** 63n ? v.toString() : formatNumber(Number(v)));
        return true;
      case "undefined":
        this.ascii("nil");
        return true;
      case "object":
        if (v === null) {
          this.ascii("nil");
          return true;
        }
        return false;
      default:
        throw new SerializeError(`Can't serialize ${typeof v}`);
    }
  }

  /**
   * Serialised forms of the top-level table's values (depth 2), by identity. Only for values that
   * are never mutated afterwards (the internal driver's cached records).
   */
  entryCache: WeakMap<object, Buffer> | undefined;
  /** Filled, when set, with where each top-level member lies in the output (see EntryIndex). */
  index: EntryIndex | undefined;

  private append(bytes: Buffer): void {
    if (this.len + bytes.length > this.buf.length) this.grow(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  value(v: unknown, d: number): void {
    if (this.scalar(v)) return;
    const cache = d === 2 ? this.entryCache : undefined;
    if (!cache) return this.table(v as object, d);
    const hit = cache.get(v as object);
    if (hit) return this.append(hit);
    const start = this.len;
    this.table(v as object, d);
    cache.set(v as object, Buffer.from(this.buf.subarray(start, this.len)));
  }

  table(t: object, d: number): void {
    if (this.seen.has(t)) throw new SerializeError("Can't serialize table: table has multiple references");
    if (d > MAX_DEPTH) throw new SerializeError("Can't serialize table: max table depth reached");
    this.seen.add(t);
    this.byte(123); // {
    let had = false;
    if (Array.isArray(t)) {
      for (let i = 0; i < t.length; i++) {
        const v: unknown = t[i];
        if (v === undefined || v === null) throw new SerializeError(`Can't serialize nil as item ${i + 1} of a sequence`);
        had = true;
        this.byte(NL);
        this.tabs(d);
        this.value(v, d + 1);
        this.byte(59); // ;
      }
    } else {
      if (!isPlainObject(t)) throw new SerializeError(`Can't serialize ${describe(t)}`);
      const keys = Object.keys(t);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i]!;
        const v: unknown = (t as Record<string, unknown>)[key];
        if (v === undefined || v === null) continue;
        had = true;
        const start = this.len;
        this.byte(NL);
        this.tabs(d);
        this.byte(91); // [
        this.string(key);
        this.ascii("] = ");
        this.value(v, d + 1);
        this.byte(59);
        if (d === 1) this.index?.set(key, [start, this.len]);
      }
    }
    // The last item's ";" is followed by "\n" + (depth-1) TABs before the closing brace.
    if (had) {
      this.byte(NL);
      this.tabs(d - 1);
    }
    this.byte(125); // }
  }
}

/** The serialisation of `v` as bytes (pure ASCII). */
export function serializeBytes(v: unknown, prefix = "", suffix = "", entryCache?: WeakMap<object, Buffer>, index?: EntryIndex): Buffer {
  const w = new Writer();
  w.entryCache = entryCache;
  w.index = index;
  w.ascii(prefix);
  w.value(v, 1);
  w.ascii(suffix);
  return w.buf.subarray(0, w.len);
}

/** Serialises `v` exactly as Prosody's `require "util.serialization".serialize(v)` would. */
export function serialize(v: unknown): string {
  return serializeBytes(v).toString("latin1");
}

/**
 * The bytes of a datamanager file: `return <literal>;\n`. `entryCache` (optional) remembers the
 * serialised form of each top-level value by identity, for callers that rewrite big tables whose
 * values they never mutate (only valid for objects that stay unchanged while in the cache).
 */
export function serializeFileBytes(v: unknown, entryCache?: WeakMap<object, Buffer>, index?: EntryIndex): Buffer {
  return serializeBytes(v, "return ", ";\n", entryCache, index);
}

/** The content of a datamanager file: `return <literal>;\n`. */
export function serializeFile(v: unknown): string {
  return serializeFileBytes(v).toString("latin1");
}
