/**
 * Issue 11 item 9: our nodeprep, nameprep and saslprep against Prosody's own
 * util.encodings.stringprep (lua5.4 + Prosody's library in /usr/lib/prosody; Debian builds it on
 * ICU 72), through _prosody-stringprep.lua: every code point alone (BMP and supplementary planes),
 * every BMP code point in four contexts, and a seeded corpus of mixed strings; strict and not.
 * Skipped, with the reason, when lua5.4 or Prosody is not installed.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { nameprep, nodeprep, saslprep } from "../../src/util/stringprep.js";
import { skip } from "../helpers/skip.js";

const PROSODY_LUA = "/usr/lib/prosody";
const SCRIPT = fileURLToPath(new URL("./_prosody-stringprep.lua", import.meta.url));
const missing =
  spawnSync("lua5.4", ["-v"]).status !== 0
    ? "lua5.4 not found (apt install lua5.4)"
    : !existsSync(join(PROSODY_LUA, "util", "encodings.so"))
      ? "Prosody's util/encodings.so not found (apt install prosody)"
      : undefined;

const test = suite("util/stringprep: the same results as Prosody's util.encodings");


function prosody(args: string[], input?: string): string[] {
  const r = spawnSync("lua5.4", [SCRIPT, PROSODY_LUA, ...args], { input, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.split("\n").slice(0, -1);
}

const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");

/** Our six results, in the Lua script's notation. */
function ours(s: string): string {
  const out: string[] = [];
  for (const f of [nodeprep, nameprep, saslprep]) {
    for (const strict of [false, true]) {
      const r = f(s, strict);
      out.push(r === undefined ? "-" : r === s ? "=" : hex(r));
    }
  }
  return out.join(" ");
}

/** The Lua script's "all" listing, computed with our functions. */
function oursAll(first: number, last: number): string[] {
  const lines: string[] = [];
  let runStart = 0;
  let runSig: string | undefined;
  const flush = (before: number) => {
    if (runSig !== undefined) lines.push(`${runStart.toString(16)} ${(before - 1).toString(16)} ${runSig}`);
    runSig = undefined;
  };
  for (let c = first; c <= last; c++) {
    if (c >= 0xd800 && c <= 0xdfff) {
      flush(c);
      continue;
    }
    const sig = ours(String.fromCodePoint(c));
    if (/[0-9a-f]/.test(sig)) {
      flush(c);
      lines.push(`${c.toString(16)} ${c.toString(16)} ${sig}`);
    } else if (sig !== runSig) {
      flush(c);
      runStart = c;
      runSig = sig;
    }
  }
  flush(last + 1);
  return lines;
}

/** Asserts both listings are equal, showing the first differences readably. */
function same(mine: string[], theirs: string[], label: (i: number) => string) {
  const diffs: string[] = [];
  for (let i = 0; i < Math.max(mine.length, theirs.length) && diffs.length < 15; i++) {
    if (mine[i] !== theirs[i]) diffs.push(`${label(i)}\n   ours:    ${mine[i]}\n   Prosody: ${theirs[i]}`);
  }
  assert.ok(diffs.length === 0, `differences (nodeprep, strict, nameprep, strict, saslprep, strict):\n${diffs.join("\n")}`);
}

function compareStrings(inputs: string[]) {
  const theirs = prosody(["lines"], inputs.map(hex).join("\n") + "\n");
  assert.is(theirs.length, inputs.length);
  same(inputs.map(ours), theirs, (i) => `input ${JSON.stringify(inputs[i])} (${hex(inputs[i]!)})`);
}

test("every code point of the BMP, alone", (ctx) => {
  if (missing) return skip(ctx, missing);
  const theirs = prosody(["all", "0", String(0xffff)]);
  same(oursAll(0, 0xffff), theirs, (i) => `listing line ${i}`);
});

test("every code point of the supplementary planes, alone", (ctx) => {
  if (missing) return skip(ctx, missing);
  const theirs = prosody(["all", String(0x10000), String(0x10ffff)]);
  same(oursAll(0x10000, 0x10ffff), theirs, (i) => `listing line ${i}`);
});

test("every BMP code point in context: after a letter, before Hebrew, before a combining mark, after a Hangul jamo", (ctx) => {
  if (missing) return skip(ctx, missing);
  const inputs: string[] = [];
  for (let c = 0; c <= 0xffff; c++) {
    if (c >= 0xd800 && c <= 0xdfff) continue;
    const ch = String.fromCharCode(c);
    inputs.push("a" + ch, ch + "\u05d0", ch + "\u0301", "\u1100" + ch);
  }
  compareStrings(inputs);
});

test("a seeded corpus of mixed strings (combining sequences, bidi, prohibited characters in context, unassigned, long)", (ctx) => {
  if (missing) return skip(ctx, missing);
  const pools: Array<[number, number]> = [
    [0x41, 0x5a], [0x61, 0x7a], [0x20, 0x40], [0xa0, 0x17f], [0x0300, 0x036f], [0x0370, 0x03ff], [0x0400, 0x04ff],
    [0x0590, 0x05ff], [0x0600, 0x06ff], [0x0660, 0x0669], [0x07c0, 0x07ff], [0x0900, 0x097f], [0x1100, 0x11ff],
    [0xac00, 0xac40], [0x1e00, 0x1fff], [0x2000, 0x206f], [0x2100, 0x218f], [0x2460, 0x24ff], [0x3000, 0x30ff],
    [0x3300, 0x33ff], [0xf900, 0xfaff], [0xfb00, 0xfb4f], [0xfdf0, 0xfdff], [0xfe00, 0xfe0f], [0xfe70, 0xfeff],
    [0xff00, 0xffef], [0x1d400, 0x1d7ff], [0x1f600, 0x1f64f], [0xe0000, 0xe007f], [0x0221, 0x024f], [0x1e9b, 0x1e9f],
  ];
  let seed = 0x5eed1;
  const rand = (n: number) => {
    // xorshift32: the same corpus on every run.
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const pick = () => {
    const [lo, hi] = pools[rand(pools.length)]!;
    return String.fromCodePoint(lo + rand(hi - lo + 1));
  };
  const inputs: string[] = ["ΣΑΣ", "ᾈ", "ẞ", "Straße", "ǅ", "İstanbul", "ﷺ", "㍻", "Ⅻ", "\u05d0\u05d1", "\u05d01", "1\u05d0", "\u0627\u0644\u0661"];
  for (let i = 0; i < 30_000; i++) {
    let s = "";
    const len = 1 + rand(i % 10 === 0 ? 40 : 8);
    for (let k = 0; k < len; k++) s += pick();
    inputs.push(s);
  }
  // Around the 1023-byte limits, before and after mapping (ß → ss, ﷺ → 18 letters, ﬃ → ffi).
  for (const [unit, n] of [["a", 1023], ["a", 1024], ["ß", 511], ["ß", 512], ["ﷺ", 60], ["ﷺ", 341], ["ﬃ", 341], ["Ⅻ", 341], ["\u00ad", 511]] as const) {
    inputs.push(unit.repeat(n), "b" + unit.repeat(n - 1));
  }
  compareStrings(inputs);
});

test.run();
