/**
 * nodeprep (RFC 3920 appendix A), nameprep (RFC 3491) and saslprep (RFC 4013) giving exactly the
 * results of Prosody 0.12's `util.encodings.stringprep` as Debian builds it: on ICU 72's StringPrep
 * (test/util/stringprep-prosody.test.ts compares every code point with it). What that means:
 *
 * 1. map each input code point: RFC 3454 B.1 to nothing, B.2 case folding (nodeprep, nameprep) or
 *    C.1.2 spaces to U+0020 (saslprep). In strict mode a code point unassigned in Unicode 3.2
 *    (table A.1) fails; otherwise it is kept as it is;
 * 2. NFKC, but only over runs of code points assigned in Unicode 3.2 (ICU filters its current
 *    normalizer with the 3.2 repertoire): `ẞ` (Unicode 5.1) stays `ẞ`;
 * 3. refuse the result if it holds a prohibited code point (the profile's C tables; nodeprep also
 *    refuses " & ' / : < > @), or breaks the bidi rule, judged with ICU 72's bidi classes (Unicode
 *    15.0), not RFC 3454's D tables: no L together with R/AL, and R/AL text must start and end R/AL;
 * 4. input of 1024 UTF-8 bytes or more, or a result of more than 1023, fails (Prosody's buffers).
 *
 * Unlike String.prototype.toLowerCase, B.2 has no final-sigma rule (`ΣΑΣ` → `σασ`) and folds
 * `ᾈ` to `ἀι`. Strings with lone surrogates fail (Prosody only ever sees valid UTF-8).
 */
import * as tables from "./stringprep-tables.js";

/**
 * The longest input (and result) Prosody's util.encodings prepares, in UTF-8 bytes: it refuses
 * 1024 bytes or more. So no longer username can be nodeprepped and no longer password can be
 * SASLprepped for SCRAM by Prosody: these are our maximums too.
 */
export const PREP_MAX_BYTES = 1023;

// --- internal: tables ---

/** Sorted, disjoint ranges: code point c is inside when starts[i] <= c <= ends[i]. */
interface RangeSet {
  starts: Int32Array;
  ends: Int32Array;
}

let rangeSetsDecoded = 0;

/** How many range tables this process has decoded (for tests: ASCII input decodes none). */
export function decodedRangeSets(): number {
  return rangeSetsDecoded;
}

function decodeRanges(...encoded: Array<string | Array<[number, number]>>): RangeSet {
  rangeSetsDecoded++;
  const pairs: Array<[number, number]> = [];
  for (const text of encoded) {
    if (typeof text !== "string") {
      pairs.push(...text);
      continue;
    }
    const nums = text.split(",").map((n) => parseInt(n, 36));
    let end = 0;
    for (let i = 0; i < nums.length; i += 2) {
      const start = end + nums[i]!;
      end = start + nums[i + 1]!;
      pairs.push([start, end - 1]);
    }
  }
  // Tables overlap (C.2.2 and C.8 share U+206A..U+206F): merge, for the binary search.
  pairs.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [s, e] of pairs) {
    const last = merged[merged.length - 1];
    if (last && s <= last[1] + 1) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  return { starts: Int32Array.from(merged, (r) => r[0]), ends: Int32Array.from(merged, (r) => r[1]) };
}

const singles = (codePoints: number[]): Array<[number, number]> => codePoints.map((c) => [c, c]);

function inRanges(set: RangeSet, c: number): boolean {
  let lo = 0;
  let hi = set.starts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (c < set.starts[mid]!) hi = mid - 1;
    else if (c > set.ends[mid]!) lo = mid + 1;
    else return true;
  }
  return false;
}

function decodeMap(text: string): Map<number, string> {
  const map = new Map<number, string>();
  let c = 0;
  for (const entry of text.split(",")) {
    const [gap, to] = entry.split(":") as [string, string];
    c += parseInt(gap, 36);
    map.set(c, String.fromCodePoint(...to.split(".").map((n) => parseInt(n, 36))));
  }
  return map;
}

interface Profile {
  caseFold: boolean;
  /** For the ASCII fast path: 1 for each prohibited ASCII code. */
  asciiProhibited: Uint8Array;
  /** saslprep: C.1.2 spaces become U+0020. */
  spacesToSpace: boolean;
  /** All prohibited code points, decoded on first use with non-ASCII input. */
  prohibited(): RangeSet;
}

interface Data {
  unassigned: RangeSet;
  nothing: RangeSet;
  spaces: RangeSet;
  caseFold: Map<number, string>;
  bidiL: RangeSet;
  bidiRAL: RangeSet;
}

interface Profiles {
  nodeprep: Profile;
  nameprep: Profile;
  saslprep: Profile;
}

let data: Data | undefined;
let profiles: Profiles | undefined;

/** The ASCII code points in encoded tables: their ranges are read only as far as code point 127. */
function asciiIn(encoded: Array<string | Array<[number, number]>>): Uint8Array {
  const mask = new Uint8Array(128);
  const mark = (start: number, end: number) => {
    for (let c = start; c <= Math.min(end, 127); c++) mask[c] = 1;
  };
  for (const text of encoded) {
    if (typeof text !== "string") {
      for (const [start, end] of text) mark(start, end);
      continue;
    }
    // Same encoding as decodeRanges: gap and length pairs in base 36, ranges in rising order.
    let end = 0;
    let at = 0;
    while (at < text.length && end <= 127) {
      const comma1 = text.indexOf(",", at);
      const comma2 = text.indexOf(",", comma1 + 1);
      const start = end + parseInt(text.slice(at, comma1), 36);
      end = start + parseInt(text.slice(comma1 + 1, comma2 < 0 ? text.length : comma2), 36);
      if (start <= 127) mark(start, end - 1);
      at = comma2 < 0 ? text.length : comma2 + 1;
    }
  }
  return mask;
}

function profile(caseFold: boolean, spacesToSpace: boolean, ...tablesOf: Array<string | Array<[number, number]>>): Profile {
  let prohibited: RangeSet | undefined;
  return { caseFold, spacesToSpace, asciiProhibited: asciiIn(tablesOf), prohibited: () => (prohibited ??= decodeRanges(...tablesOf)) };
}

/**
 * The profiles, made on first use. ASCII input (host names in a config, most user names) needs
 * only the ASCII part of their prohibited tables (the whole tables are decoded on first use with
 * non-ASCII input, as are the large tables below): the config prosodyctl reads before sending a
 * command to the server costs no table decoding (issue 15).
 */
function loadProfiles(): Profiles {
  if (profiles) return profiles;
  // C.1.1 (the ASCII space), and " & ' / : < > @ (RFC 3920 appendix A.5).
  const nodeSpecials = singles([..." \"&'/:<>@"].map((ch) => ch.charCodeAt(0)));
  profiles = {
    nodeprep: profile(true, false, tables.C12, tables.C21, tables.C22, tables.C3_9, nodeSpecials),
    nameprep: profile(true, false, tables.C12, tables.C22, tables.C3_9),
    saslprep: profile(false, true, tables.C12, tables.C21, tables.C22, tables.C3_9),
  };
  return profiles;
}

/** Decoded on first use with non-ASCII input (a few milliseconds), not at import. */
function load(): Data {
  if (data) return data;
  data = {
    unassigned: decodeRanges(tables.A1),
    nothing: decodeRanges(tables.B1),
    spaces: decodeRanges(tables.C12),
    caseFold: decodeMap(tables.B2),
    bidiL: decodeRanges(tables.BIDI_L),
    bidiRAL: decodeRanges(tables.BIDI_RAL),
  };
  return data;
}

// --- internal: the algorithm ---

const isAscii = (s: string) => /^[\x00-\x7f]*$/.test(s);

/**
 * Unicode 3.2's decompositions of the five CJK compatibility ideographs that Corrigendum #4 changed
 * (NormalizationCorrections.txt); ICU's StringPrep normalizes as Unicode 3.2 did.
 */
const CORRIGENDUM_4 = new Map<number, string>([
  [0x2f868, "\u{2136A}"],
  [0x2f874, "\u5F33"],
  [0x2f91f, "\u43AB"],
  [0x2f95f, "\u7AAE"],
  [0x2f9bf, "\u4D57"],
]);

/** NFKC applied only to runs of code points assigned in Unicode 3.2; the others are kept as they are. */
function nfkc32(s: string, d: Data): string {
  if (isAscii(s)) return s;
  let out = "";
  let run = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x2f868 && c <= 0x2f9bf && CORRIGENDUM_4.has(c)) {
      run += CORRIGENDUM_4.get(c); // singletons of combining class 0: replacing them first is the same
    } else if (inRanges(d.unassigned, c)) {
      if (run) out += run.normalize("NFKC");
      run = "";
      out += ch;
    } else run += ch;
  }
  return run ? out + run.normalize("NFKC") : out;
}

function prep(input: unknown, pick: (p: Profiles) => Profile, strict: boolean): string | undefined {
  if (typeof input !== "string") return undefined;
  if (input.length > PREP_MAX_BYTES || Buffer.byteLength(input, "utf8") > PREP_MAX_BYTES) return undefined;
  if (/\p{Cs}/u.test(input)) return undefined; // a lone surrogate: not valid UTF-8
  const p = pick(loadProfiles());
  if (isAscii(input)) {
    // Nothing in ASCII is mapped to nothing, normalized, or R/AL: only case and prohibitions.
    for (let i = 0; i < input.length; i++) if (p.asciiProhibited[input.charCodeAt(i)]) return undefined;
    return p.caseFold ? input.toLowerCase() : input;
  }
  const d = load();

  let mapped = "";
  for (const ch of input) {
    const c = ch.codePointAt(0)!;
    if (strict && inRanges(d.unassigned, c)) return undefined;
    // U+200B is in both B.1 and C.1.2: ICU's saslprep maps it to a space.
    if (p.spacesToSpace && inRanges(d.spaces, c)) mapped += " ";
    else if (inRanges(d.nothing, c)) continue;
    else mapped += (p.caseFold && d.caseFold.get(c)) || ch;
  }
  const out = nfkc32(mapped, d);

  let hasL = false;
  let hasRAL = false;
  let firstRAL = false;
  let lastRAL = false;
  let first = true;
  for (const ch of out) {
    const c = ch.codePointAt(0)!;
    if (inRanges(p.prohibited(), c)) return undefined;
    const ral = inRanges(d.bidiRAL, c);
    if (ral) hasRAL = true;
    else if (inRanges(d.bidiL, c)) hasL = true;
    if (first) firstRAL = ral;
    first = false;
    lastRAL = ral;
  }
  if (hasRAL && (hasL || !firstRAL || !lastRAL)) return undefined;
  if (Buffer.byteLength(out, "utf8") > PREP_MAX_BYTES) return undefined;
  return out;
}

// --- public ---

/**
 * The prepared localpart (Prosody's `nodeprep(s, strict)`), or undefined if it cannot be one.
 * @example nodeprep("ΣΑΣ") // "σασ"
 */
export function nodeprep(s: string, strict = false): string | undefined {
  return prep(s, (d) => d.nodeprep, strict);
}

/**
 * The prepared host name (Prosody's `nameprep(s, strict)`), or undefined.
 * @example nameprep("Example.COM") // "example.com"
 */
export function nameprep(s: string, strict = false): string | undefined {
  return prep(s, (d) => d.nameprep, strict);
}

/**
 * SASLprep (Prosody's `saslprep(s, strict)`) of a password, or undefined if it is refused.
 * @example saslprep("I\u00ADX") // "IX"
 */
export function saslprep(s: string, strict = false): string | undefined {
  return prep(s, (d) => d.saslprep, strict);
}
