/**
 * XMPP nodeprep (RFC 3920 Appendix A) and nameprep, close to Prosody's ICU-based util.encodings:
 * NFKC, case folding (incl. ß → ss), map-to-nothing characters removed, and the prohibited sets:
 * spaces, controls, private use, non-characters, surrogates, tagging and change-display
 * characters, plus (nodeprep only) the eight ASCII characters " & ' / : < > @.
 * Known difference: Unicode 3.2's unassigned code points are not rejected in strict mode.
 */

/**
 * The longest input (and result) Prosody's util.encodings prepares, in UTF-8 bytes: it refuses
 * 1024 bytes or more. So no longer username can be nodeprepped and no longer password can be
 * SASLprepped for SCRAM by Prosody: these are our maximums too.
 */
export const PREP_MAX_BYTES = 1023;

// RFC 3454 B.1: commonly mapped to nothing.
const MAP_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;

// C.1.1/C.1.2 spaces, C.2.1/C.2.2 controls, C.3 private use, C.4 non-characters, C.5 surrogates,
// C.6 inappropriate for plain text, C.7 for canonical representation, C.8 change display, C.9 tagging.
const PROHIBITED =
  /[\u0000-\u001F\u007F-\u009F\u0020\u00A0\u1680\u2000-\u200B\u2028\u2029\u202F\u205F\u3000\u06DD\u070F\u180E\u200C\u200D\u2060-\u2063\u206A-\u206F\uFEFF\uFFF9-\uFFFC\uE000-\uF8FF\uFDD0-\uFDEF\uFFFE\uFFFF\u0340\u0341\u200E\u200F\u202A-\u202E\u2FF0-\u2FFB\uFFFD]|[\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\u{F0000}-\u{FFFFD}\u{100000}-\u{10FFFD}]|[\u{1FFFE}\u{1FFFF}\u{2FFFE}\u{2FFFF}\u{3FFFE}\u{3FFFF}\u{4FFFE}\u{4FFFF}\u{5FFFE}\u{5FFFF}\u{6FFFE}\u{6FFFF}\u{7FFFE}\u{7FFFF}\u{8FFFE}\u{8FFFF}\u{9FFFE}\u{9FFFF}\u{AFFFE}\u{AFFFF}\u{BFFFE}\u{BFFFF}\u{CFFFE}\u{CFFFF}\u{DFFFE}\u{DFFFF}\u{EFFFE}\u{EFFFF}]|\p{Cs}/u;

const NODE_SPECIALS = /["&'/:<>@]/;
// RFC 3454 D.1 (RandALCat: Hebrew, Arabic, Syriac, Thaana letters and presentation forms). JS
// regexps have no Bidi_Class property, so the table's ranges are listed.
const RAL =
  /[\u05BE\u05C0\u05C3\u05D0-\u05EA\u05F0-\u05F4\u061B\u061F\u0621-\u063A\u0640-\u064A\u066D-\u066F\u0671-\u06D5\u06DD\u06E5\u06E6\u06FA-\u06FE\u0700-\u070D\u0710\u0712-\u072C\u0780-\u07A5\u07B1\u200F\uFB1D\uFB1F-\uFB28\uFB2A-\uFB36\uFB38-\uFB3C\uFB3E\uFB40\uFB41\uFB43\uFB44\uFB46-\uFBB1\uFBD3-\uFD3D\uFD50-\uFD8F\uFD92-\uFDC7\uFDF0-\uFDFC\uFE70-\uFE74\uFE76-\uFEFC]/u;
// D.2 (LCat) approximated as letters that are not RandALCat.
const L = { test: (s: string) => [...s].some((c) => /\p{L}/u.test(c) && !RAL.test(c)) };

function caseFold(s: string): string {
  // toLowerCase covers simple folding; ß and a few ligatures fold to several letters in B.2.
  return s.replace(/ß/g, "ss").toLowerCase();
}

function prep(input: string, prohibitSpecials: boolean): string | undefined {
  if (typeof input !== "string") return undefined;
  if (Buffer.byteLength(input, "utf8") > PREP_MAX_BYTES) return undefined;
  let s = caseFold(input.replace(MAP_TO_NOTHING, "")).normalize("NFKC");
  // Folding again after normalisation catches compatibility characters that decompose to capitals.
  s = caseFold(s).normalize("NFKC");
  if (PROHIBITED.test(s)) return undefined;
  if (prohibitSpecials && NODE_SPECIALS.test(s)) return undefined;
  // RFC 3454 section 6: bidi rule.
  if (RAL.test(s)) {
    if (L.test(s)) return undefined;
    const chars = [...s];
    if (!RAL.test(chars[0]!) || !RAL.test(chars[chars.length - 1]!)) return undefined;
  }
  return s;
}

/** The prepared localpart, or undefined if it is not allowed in a JID. */
export function nodeprep(s: string): string | undefined {
  return prep(s, true);
}

/** The prepared host name, or undefined. */
export function nameprep(s: string): string | undefined {
  return prep(s, false);
}
