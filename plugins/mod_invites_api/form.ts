/**
 * Query-string decoding as Prosody's util/http.formdecode does it for this module: `name=value`
 * pairs split on "&", "+" is a space, %XX escapes decoded, the last duplicate wins; pieces without
 * "=" are ignored. Never throws: malformed escapes and bad UTF-8 are kept or replaced.
 */
export function urldecode(s: string): string {
  const bytes: number[] = [];
  const src = Buffer.from(s.replace(/\+/g, " "), "utf8");
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === 0x25 && i + 2 < src.length + 0 && /^[0-9a-fA-F]{2}$/.test(String.fromCharCode(src[i + 1]!, src[i + 2]!))) {
      bytes.push(parseInt(String.fromCharCode(src[i + 1]!, src[i + 2]!), 16));
      i += 2;
    } else bytes.push(c);
  }
  return Buffer.from(bytes).toString("utf8");
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
