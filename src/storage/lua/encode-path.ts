/**
 * File-name encodings of Prosody's `internal` storage (util/datamanager.lua, see
 * spec/prosody-model.md §2.3):
 *
 * - `encodeNode` (host and user names): every UTF-8 byte that is not ASCII `[A-Za-z0-9]` becomes
 *   `%` + two lower-case hex digits (`example.com` → `example%2ecom`, `ä` → `%c3%a4`);
 * - `encodeStore` (store names): the same, but `_` is kept (`invite_token` stays as it is);
 * - `decode`: `%xx` (upper or lower hex) back to bytes, read as UTF-8; anything else is kept.
 */

/** Bytes per file name on Linux file systems (NAME_MAX). */
const NAME_MAX = 255;

/**
 * Whether a data file called `base` (e.g. `alice.dat`) is one Prosody can write too: its
 * datamanager writes `<base>~` and renames it, so `base` may take at most NAME_MAX - 1 bytes, i.e.
 * an encoded user name at most 250 (`.dat~` is 5). Longer names are refused rather than stored in a
 * file that a Prosody sharing the directory could never update.
 */
export function isWritableFileName(base: string): boolean {
  return Buffer.byteLength(base, "utf8") < NAME_MAX;
}

const HEX = "0123456789abcdef";

function isAlnum(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function encodeWith(s: string, keepUnderscore: boolean): string {
  // Fast path: nothing to escape.
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!(isAlnum(c) || (keepUnderscore && c === 0x5f))) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  const bytes = Buffer.from(s, "utf8");
  let out = "";
  for (const b of bytes) {
    if (isAlnum(b) || (keepUnderscore && b === 0x5f)) out += String.fromCharCode(b);
    else out += "%" + HEX[b >> 4] + HEX[b & 15];
  }
  return out;
}

/** Encoding of host and user names in paths (datamanager's `encode`). */
export function encodeNode(s: string): string {
  return encodeWith(s, false);
}

/** Encoding of store names in paths (datamanager's `store_encode`: like encodeNode, `_` kept). */
export function encodeStore(s: string): string {
  return encodeWith(s, true);
}

const hexVal = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;

/** Reverses encodeNode/encodeStore: `%xx` with upper- or lower-case hex; other text is kept. */
export function decode(s: string): string {
  if (!s.includes("%")) return s;
  const src = Buffer.from(s, "utf8");
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i]!;
    if (b === 0x25 && i + 2 < src.length) {
      const h = hexVal(src[i + 1]!);
      const l = hexVal(src[i + 2]!);
      if (h >= 0 && l >= 0) {
        out[n++] = (h << 4) | l;
        i += 2;
        continue;
      }
    }
    out[n++] = b;
  }
  return out.toString("utf8", 0, n);
}
