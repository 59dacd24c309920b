/**
 * Query strings and urlencoded bodies decoded as Prosody's util/http.formdecode does: "+" is a
 * space, %XX escapes, the last duplicate wins, pieces without "=" are ignored. Never throws:
 * malformed escapes are kept as they are and bad UTF-8 is replaced.
 */

/** ASCII without "%" or "+": decodes to itself. */
const PLAIN = /^[^%+\u0080-\uffff]*$/;

/** Percent-decoding byte by byte; a malformed escape is kept as it is; bad UTF-8 is replaced. */
export function urldecode(s: string): string {
  if (PLAIN.test(s)) return s; // nothing to decode: most keys and values
  const src = Buffer.from(s.replace(/\+/g, " "), "utf8");
  const out = Buffer.alloc(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === 0x25 && i + 2 < src.length && isHex(src[i + 1]!) && isHex(src[i + 2]!)) {
      out[n++] = parseInt(String.fromCharCode(src[i + 1]!, src[i + 2]!), 16);
      i += 2;
    } else out[n++] = c;
  }
  return out.subarray(0, n).toString("utf8");
}

export function formdecode(query: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!query) return out;
  for (const piece of query.split("&")) {
    const eq = piece.indexOf("=");
    if (eq < 0) continue;
    out.set(urldecode(piece.slice(0, eq)), urldecode(piece.slice(eq + 1)));
  }
  return out;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
