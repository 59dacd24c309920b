/**
 * Reading the register form's multipart/form-data bodies (which Prosody cannot read: it answers
 * a bare 500); urlencoded bodies go through formdecode from "prosody-ts/util". Nothing here
 * throws on malformed input.
 */

/**
 * The fields of a multipart/form-data body (RFC 7578); file parts are skipped. undefined when
 * the body or the boundary is malformed.
 */
export function multipartDecode(body: Buffer, contentType: string): Map<string, string> | undefined {
  const boundary = param(contentType, "boundary");
  if (!boundary || boundary.length > 200) return undefined;
  const delimiter = Buffer.from(`--${boundary}`, "latin1");
  const out = new Map<string, string>();
  let pos = body.indexOf(delimiter);
  if (pos < 0) return undefined;
  for (;;) {
    pos += delimiter.length;
    // "--" after a delimiter closes the body.
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return out;
    // Transport padding, then CRLF.
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    else return undefined;
    const headEnd = body.indexOf("\r\n\r\n", pos, "latin1");
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n", "latin1"), delimiter]), pos);
    if (next < 0) return undefined;
    const emptyHead = body[pos] === 0x0d && body[pos + 1] === 0x0a;
    if (!emptyHead && (headEnd < 0 || headEnd > next)) return undefined;
    const headers = emptyHead ? "" : body.subarray(pos, headEnd).toString("utf8");
    const contentStart = emptyHead ? pos + 2 : headEnd + 4;
    const disposition = headers
      .split("\r\n")
      .find((l) => /^content-disposition\s*:/i.test(l))
      ?.replace(/^[^:]*:\s*/, "");
    if (disposition && /^form-data\b/i.test(disposition)) {
      const name = param(disposition, "name");
      const filename = param(disposition, "filename");
      if (name !== undefined && filename === undefined) out.set(name, body.subarray(contentStart, next).toString("utf8"));
    }
    pos = next + 2;
  }
}

// --- Internal helpers ---


/** A `key=value` or `key="value"` parameter of a header value. */
function param(header: string, key: string): string | undefined {
  const re = new RegExp(`(?:^|;)\\s*${key}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]*))`, "i");
  const m = re.exec(header);
  if (!m) return undefined;
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2];
}
