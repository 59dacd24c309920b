/**
 * Fuzzing of the Lua data format code (seeded: set FUZZ_SEED to reproduce or vary a run):
 * - random values round-trip serialize → read;
 * - random garbage, truncations and byte mutations of valid files give a value or a StorageError,
 *   never another exception and never a hang;
 * - path encodings round-trip.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decode, encodeNode, encodeStore } from "../../src/storage/lua/encode-path.js";
import { readLuaData } from "../../src/storage/lua/read.js";
import { serializeFileBytes } from "../../src/storage/lua/serialize.js";
import { StorageError } from "../../src/storage/types.js";
import { prng } from "../fixtures/internal/gen.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const CASES = 1000; // per test; 4 tests → 4000 cases

type R = () => number;
const int = (r: R, n: number) => Math.floor(r() * n);
const pick = <T>(r: R, xs: readonly T[]): T => xs[int(r, xs.length)]!;

const CHARS = [..."abcXYZ019 _-.:/@?;=&%~", "\t", "\n", "\r", "\0", "\x07", "\x7f", '"', "'", "\\", "[", "]", "]]", "=", "é", "ß", "日", "✓", "😀", "𝄞", "\u00a0", "\ufeff", "\u{10ffff}"];

function randString(r: R): string {
  const len = r() < 0.2 ? 0 : int(r, r() < 0.9 ? 12 : 200);
  let s = "";
  for (let i = 0; i < len; i++) s += pick(r, CHARS);
  return s;
}

function randNumber(r: R): number {
  switch (int(r, 6)) {
    case 0:
      return int(r, 100) - 50;
    case 1:
      return Math.floor((r() - 0.5) * 2 ** 53);
    case 2:
      return (r() - 0.5) * 10 ** (int(r, 40) - 20);
    case 3:
      return pick(r, [0, 0.1, 0.5, 1e300, -1e-300, 5e-324, 2 ** 63, -(2 ** 63), 2 ** 64, 1.7976931348623157e308, 1 / 3]);
    case 4:
      return r() * 1e6;
    default:
      return int(r, 2 ** 31);
  }
}

function randValue(r: R, depth: number): unknown {
  const k = depth > 5 ? int(r, 3) : int(r, 6);
  switch (k) {
    case 0:
      return randString(r);
    case 1:
      return randNumber(r);
    case 2:
      return r() < 0.5;
    case 3: {
      const n = int(r, 5);
      return Array.from({ length: n }, () => randValue(r, depth + 1));
    }
    default: {
      const o: Record<string, unknown> = {};
      const n = int(r, 6);
      for (let i = 0; i < n; i++) {
        const key = r() < 0.1 ? String(int(r, 5)) : randString(r);
        if (key === "__proto__") continue;
        o[key] = randValue(r, depth + 1);
      }
      return o;
    }
  }
}

/** What reading gives back: empty tables are `{}` (Lua has no empty-array/empty-object distinction). */
function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? {} : v.map(normalise);
  if (v && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = normalise(x);
    return o;
  }
  return v;
}

/** Reads, demanding a value or a StorageError, quickly. */
function readSafely(bytes: Uint8Array, label: string): unknown {
  const t0 = performance.now();
  try {
    return readLuaData(bytes, "fuzz.dat");
  } catch (err) {
    if (!(err instanceof StorageError)) {
      throw new Error(`${label}: ${String(err)} for input ${JSON.stringify(Buffer.from(bytes).toString("latin1").slice(0, 300))}`);
    }
    assert.ok(err.message.startsWith("fuzz.dat"), err.message);
    return err;
  } finally {
    const ms = performance.now() - t0;
    if (ms > 1000) throw new Error(`${label}: took ${ms.toFixed(0)} ms`);
  }
}

test(`round trip: ${CASES} random values serialize → read (seed ${SEED})`, () => {
  const r = prng(SEED);
  for (let i = 0; i < CASES; i++) {
    const v = { v: randValue(r, 0) };
    const bytes = serializeFileBytes(v);
    for (const b of bytes) if (b > 126 || (b < 32 && b !== 9 && b !== 10)) assert.unreachable(`case ${i}: byte ${b} written raw`);
    const back = readLuaData(bytes, "rt.dat");
    assert.equal(back, normalise(v), `case ${i}`);
  }
});

const TOKENS = [
  "return", " ", "\n", "{", "}", "[", "]", "[[", "]]", "[=[", "]=]", "=", "==", ",", ";", "(", ")", "-", "--", "--[[", "/", "..", ".",
  '"', "'", "\\", "\\z", "\\x4", "\\u{", "\\u{110000}", "\\999", "0x", "1e", "1.5", "0x1p", "9999999999999999999999", "nil", "true",
  "false", "abc", "function", "os", ":", "#", "\0", "\xff", "é",
];

test(`garbage: ${CASES} random inputs → value or StorageError`, () => {
  const r = prng(SEED + 1);
  for (let i = 0; i < CASES; i++) {
    let s = "";
    const n = int(r, 60);
    if (r() < 0.3) {
      const bytes = new Uint8Array(n * 3);
      for (let j = 0; j < bytes.length; j++) bytes[j] = int(r, 256);
      readSafely(bytes, `case ${i}`);
      continue;
    }
    for (let j = 0; j < n; j++) s += pick(r, TOKENS);
    readSafely(Buffer.from(s, "latin1"), `case ${i}`);
  }
});

test(`truncations and byte mutations of ${CASES} valid files → value or StorageError`, () => {
  const r = prng(SEED + 2);
  let errors = 0;
  let values = 0;
  for (let i = 0; i < CASES; i++) {
    const bytes = serializeFileBytes({ v: randValue(r, 0), w: randString(r) });
    // A truncation…
    const cut = bytes.subarray(0, int(r, bytes.length));
    const a = readSafely(cut, `truncation ${i}`);
    a instanceof StorageError ? errors++ : values++;
    // …and a copy with a few bytes changed, inserted or removed.
    const m = Buffer.from(bytes);
    const edits = 1 + int(r, 3);
    let buf: Buffer = m;
    for (let e = 0; e < edits; e++) {
      const at = int(r, buf.length);
      const b = pick(r, [0x22, 0x27, 0x5b, 0x5d, 0x7b, 0x7d, 0x3d, 0x5c, 0x2d, 0x3b, 0x2c, 0x0a, 0x30, 0x78, int(r, 256)]);
      const how = int(r, 3);
      if (how === 0) buf[at] = b;
      else if (how === 1) buf = Buffer.concat([buf.subarray(0, at), Buffer.from([b]), buf.subarray(at)]);
      else buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1)]);
    }
    const c = readSafely(buf, `mutation ${i}`);
    c instanceof StorageError ? errors++ : values++;
  }
  assert.ok(errors > 100 && values > 100, `errors ${errors}, values ${values}`);
});

test(`path encodings round-trip (${CASES} random names)`, () => {
  const r = prng(SEED + 3);
  for (let i = 0; i < CASES; i++) {
    const s = randString(r).replace(/\u{10ffff}|\ufeff/gu, "x");
    const node = encodeNode(s);
    const store = encodeStore(s);
    assert.match(node, /^(?:[A-Za-z0-9]|%[0-9a-f]{2})*$/);
    assert.match(store, /^(?:[A-Za-z0-9_]|%[0-9a-f]{2})*$/);
    assert.is(decode(node), s);
    assert.is(decode(store), s);
    assert.is(decode(node.replace(/%([0-9a-f]{2})/g, (_, h: string) => "%" + h.toUpperCase())), s, "upper-case hex");
  }
});

test.run();
