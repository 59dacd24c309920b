/**
 * Seeded generator of raw HTTP/1.x exchanges for the server fuzz (fuzz.test.ts): methods, every
 * route of every bundled plugin, odd targets and encodings, huge/odd/duplicated/obs-folded
 * headers, chunked/malformed/oversized/multipart bodies, pipelining, split writes, half-closes,
 * aborts and slow clients. Each case says how many of its requests must get an answer.
 */

export type Rng = () => number;

/** mulberry32: small, fast, good enough to make runs reproducible from a 32-bit seed. */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzInputs {
  /** Valid invite tokens (refilled from the API's Location headers while the fuzz runs). */
  tokens: string[];
  /** A valid API key "id/secret". */
  key: string;
}

export interface FuzzCase {
  kind: string;
  /** Written in order, each after its delay (ms). */
  chunks: Array<{ delay: number; data: Buffer }>;
  /** end() after the last chunk (the client half-closes). */
  halfClose: boolean;
  /** destroy() after the last chunk: no answer expected. */
  abort: boolean;
  /** Request messages in the case (for the counts). */
  requests: number;
  /** The first `mustAnswer` requests must each get a final response. */
  mustAnswer: number;
  /** Per request: a HEAD (its response has no body). */
  heads: boolean[];
  /** A request line with an HTTP major version other than 1 was sent (505 is its answer). */
  badVersion: boolean;
}

const APPS = ["siskin-im", "conversations", "gajim", "dino", "monal", "yaxim", "beagle-im", "nosuch", "..", "%2e%2e", ""];
const STATIC = ["invite.css", "invite.js", "platform.min.js", "qr-logo.png", "illus-empty.svg", "qrcode.min.js", "nosuch", "../mod_invites_page.lua", "%2e%2e/x", ""];
const LOGOS = ["logos/dino.svg", "logos/beagle-im.png", "logos/siskin-im.png", "logos/nosuch.svg", "logos", "logos/", "", "../x", "logos/%00"];
const METHODS = ["GET", "GET", "GET", "POST", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "get", "PROPFIND", "M-SEARCH"];
const HOSTS = ["example.com", "example.com", "example.com", "example.com:5280", "EXAMPLE.COM", "example.org", "nosuch.example", "", "[::1]", "example.com.", "a b", "\u00e9xample.com", "x".repeat(3000)];
const ODD_BYTES = ["%", "%z", "%zz", "%FF", "%FF%FE", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%00", "%0D%0A", "+", "%2F", "%25", "\u00e9", "\ud83d\ude00", "..", "//", ";", "#frag", "?"];
const TYPES = [
  "application/x-www-form-urlencoded",
  "application/x-www-form-urlencoded; charset=utf-8",
  "multipart/form-data; boundary=B0UND",
  "multipart/form-data",
  "multipart/form-data; boundary=",
  "text/plain",
  "application/json",
  "application/x-www-form-urlencoded; charset=latin1",
  "",
  "multipart/mixed; boundary=B0UND",
  "\u00ff/\u00fe",
];

export function createGenerator(r: Rng, inputs: FuzzInputs) {
  const int = (n: number) => Math.floor(r() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const chance = (p: number) => r() < p;
  const token = () => (inputs.tokens.length > 0 && chance(0.8) ? pick(inputs.tokens) : pick(["", "badtoken", "A".repeat(24), "x".repeat(500), "%41%42", "\u00e9t\u00e9"]));
  const junk = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const odd = () => Array.from({ length: 1 + int(4) }, () => pick(ODD_BYTES)).join("");

  /** A path that routes somewhere (every bundled plugin's routes), maybe with a query. */
  function routedTarget(method: string): string {
    switch (int(8)) {
      case 0:
        return "/";
      case 1:
        return `/invites_page${chance(0.8) ? `?${token()}` : ""}`;
      case 2:
        return `/invites_page/setup/${pick(APPS)}?${token()}`;
      case 3:
        return `/invites_page/static/${pick(STATIC)}`;
      case 4:
        return `/register_apps/assets/${pick(LOGOS)}`;
      case 5:
        return `/invites_api${chance(0.6) ? `?key=${chance(0.7) ? inputs.key : odd()}${chance(0.3) ? "&redirect=1" : ""}` : ""}`;
      default:
        return method === "GET" && chance(0.7) ? `/register?t=${token()}${chance(0.4) ? `&c=${pick(APPS)}` : ""}` : "/register";
    }
  }

  /** A target with odd encodings, climbing paths, absolute and other forms. */
  function oddTarget(): string {
    const base = routedTarget("GET");
    switch (int(9)) {
      case 0:
        return base + odd();
      case 1:
        return base.replace(/\/([a-z_]+)/, `/${odd()}$1`);
      case 2:
        return `/${"../".repeat(1 + int(4))}etc/passwd`;
      case 3:
        return `http://example.com${base}`;
      case 4:
        return pick(["*", "example.com:443", "//", "///invites_page", "/invites_page/../register", "/./invites_page/./"]);
      case 5:
        return `/${"a/".repeat(200 + int(2000))}`;
      case 6:
        return `${base}${base.includes("?") ? "&" : "?"}${Array.from({ length: int(50) }, () => `k${int(9)}=${odd()}`).join("&")}`;
      case 7:
        return base.toUpperCase();
      default:
        return base + "#" + odd();
    }
  }

  /** urlencoded or multipart fields of the registration form (sometimes a real registration). */
  function formBody(): { type: string; body: Buffer } {
    const fields: Array<[string, string]> = [];
    if (chance(0.9)) fields.push(["token", token()]);
    if (chance(0.9)) fields.push(["user", pick(["alice", `fz${int(1e6)}`, "", "ALICE", "a@b", "a b", "\u00e9l\u00e9", "x".repeat(int(2000)), "\u0000", "\u03a3\u0391\u03a3"])]);
    if (chance(0.9)) fields.push(["password", pick(["goodpassword1", "", "short", "\u00e9".repeat(int(600)), "\u0000\u0001", "p".repeat(int(3000))])]);
    if (chance(0.3)) fields.push(["app_id", pick(APPS)]);
    if (chance(0.2)) fields.push([odd(), odd()]);
    if (chance(0.6)) {
      const enc = (s: string) => (chance(0.9) ? encodeURIComponent(s) : s + odd());
      return { type: pick(TYPES.slice(0, 2).concat([""])), body: Buffer.from(fields.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&")) };
    }
    const b = "B0UND";
    let text = fields.map(([k, v]) => `--${b}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join("");
    if (chance(0.8)) text += `--${b}--\r\n`;
    if (chance(0.15)) text = text.replace(/\r\n/g, "\n");
    if (chance(0.1)) text = text.slice(0, int(text.length));
    return { type: pick(["multipart/form-data; boundary=B0UND", "multipart/form-data; boundary=\"B0UND\"", "multipart/form-data; boundary=OTHER", "multipart/form-data"]), body: Buffer.from(text, chance(0.1) ? "latin1" : "utf8") };
  }

  /** Extra headers: the odd, the huge, the duplicated, the folded. Returns raw header lines. */
  function oddHeaders(): { lines: string[]; closes: boolean } {
    const lines: string[] = [];
    let closes = false;
    for (let i = int(4); i > 0; i--) {
      switch (int(14)) {
        case 0:
          lines.push(`X-Big: ${"A".repeat(chance(0.5) ? 9000 : 11_000 + int(20_000))}`);
          closes = true;
          break;
        case 1:
          lines.push(...Array.from({ length: 50 + int(150) }, (_, k) => `X-H${k}: ${k}`));
          closes = true;
          break;
        case 2:
          lines.push("X-Folded: first", chance(0.5) ? " continued" : "\tcontinued");
          closes = true;
          break;
        case 3:
          lines.push(`Authorization: ${pick(["Bearer " + inputs.key, "Bearer", "Basic Zm9vOmJhcg==", "Bearer  x/y", "bearer " + inputs.key, "Bearer " + "k".repeat(6000)])}`);
          break;
        case 4:
          lines.push(`X-Forwarded-For: ${pick(["1.2.3.4", "::1", "garbage", "1.2.3.4, 127.0.0.1", ""])}`, `X-Forwarded-Proto: ${pick(["https", "http", "x"])}`);
          break;
        case 5:
          lines.push(`Origin: ${pick(["https://evil.example", "null", "", "\u00e9"])}`);
          break;
        case 6:
          lines.push(`Connection: ${pick(["close", "keep-alive", "Upgrade", "close, keep-alive", "junk"])}`);
          closes = true;
          break;
        case 7:
          lines.push(`X-Bytes: ${Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]).toString("latin1")}`);
          break;
        case 8:
          lines.push(pick(["NoColonHere", "Bad Name: x", ": empty-name", "X-Nul: a\u0000b", "X-CR: a\rb"]));
          closes = true;
          break;
        case 9:
          lines.push("Host: example.com", "Host: other.example");
          // Conflicting Host headers name no host of ours: a body declared with them fits no
          // route, so it is answered from the head (404) and the connection closed (server.ts).
          closes = true;
          break;
        case 10:
          lines.push(`Expect: ${pick(["100-continue", "nonsense"])}`);
          break;
        case 11:
          lines.push(`If-None-Match: ${pick(['"x"', "*", "W/\"y\""])}`, `If-Modified-Since: ${pick(["Thu, 01 Jan 1970 00:00:00 GMT", "garbage"])}`);
          break;
        case 12:
          lines.push(`Accept-Language: ${odd()}`, `User-Agent: ${pick(["Mozilla/5.0 (Android 12)", "Mozilla/5.0 (iPhone)", "curl/8", ""])}`);
          break;
        default:
          lines.push(`Cookie: ${"c=1; ".repeat(int(300))}`);
      }
    }
    return { lines, closes };
  }

  interface Built {
    data: Buffer;
    head: boolean;
    /** Well-formed: the server must answer it. */
    answerable: boolean;
    /** The server may close the connection after answering it. */
    closes: boolean;
    badVersion: boolean;
  }

  /** One request message. */
  function request(style: "valid" | "odd"): Built {
    let method = style === "valid" ? pick(["GET", "GET", "POST", "HEAD", "OPTIONS"]) : pick(METHODS);
    let target = style === "valid" ? routedTarget(method) : chance(0.5) ? oddTarget() : routedTarget(method);
    let version = "HTTP/1.1";
    let answerable = true;
    let closes = false;
    let badVersion = false;
    if (style === "odd" && chance(0.08)) {
      version = pick(["HTTP/1.0", "HTTP/1.0", "HTTP/2.0", "HTTP/0.9", "HTTP/1.2", "http/1.1", "HTTP/1.1 ", "", "HTTP/3"]);
      // No version at all is HTTP/0.9 to node (major 0): 505 as for 2.0 and 3.
      badVersion = /^HTTP\/[023]/.test(version) || version === "";
      if (version !== "HTTP/1.0") answerable = version === "HTTP/1.2" || badVersion;
      closes = true;
    }
    // Only origin-form ("/…") and absolute-form targets are requests we must answer as such.
    if (!/^(\/|http:\/\/)/.test(target)) {
      answerable = false;
      closes = true;
    }
    if (method === "CONNECT") closes = true; // answered 404, and the connection is not HTTP any more
    if (!/^[A-Z]+$/.test(method) || /[^\x21-\x7e]/.test(target)) {
      answerable = false; // node's parser may reject it: a 400 or a close are both fine
      closes = true;
    }
    if (target.length > 8000) closes = true; // over the head limit: 431 and close
    const lines = [`${method} ${target} ${version}`.trimEnd()];
    const host = style === "valid" || chance(0.7) ? "example.com" : pick(HOSTS);
    const sendsHost = style === "valid" || chance(0.95);
    if (sendsHost) lines.push(`Host: ${host}`);
    let body: Buffer | undefined;
    let type: string | undefined;
    if (method === "POST" || method === "PUT" || (style === "odd" && chance(0.15))) {
      if (chance(0.7)) ({ type, body } = formBody());
      else if (chance(0.5)) body = junk(int(300));
      else body = Buffer.alloc(pick([16 * 1024 + 1, 4097, 70_000, 2_000_000]), 0x61);
      if (type === undefined && chance(0.8)) type = pick(TYPES);
      if (type) lines.push(`Content-Type: ${type}`);
    }
    if (style === "odd") {
      const extra = oddHeaders();
      lines.push(...extra.lines);
      if (extra.closes) closes = true;
      if (extra.lines.some((l) => /^(NoColon|Bad Name|: |X-Nul|X-CR| |\t)/.test(l))) answerable = false;
    }
    let framing = "length";
    if (body !== undefined && style === "odd") framing = pick(["length", "length", "chunked", "chunked-bad", "both", "length-short", "length-long", "length-bad", "none"]);
    let bodyBytes: Buffer = Buffer.alloc(0);
    if (body !== undefined) {
      switch (framing) {
        case "length":
          lines.push(`Content-Length: ${body.length}`);
          bodyBytes = body;
          break;
        case "chunked":
        case "chunked-bad": {
          lines.push(`Transfer-Encoding: ${framing === "chunked" ? "chunked" : pick(["chunked", "gzip, chunked", "chunked, gzip", "identity"])}`);
          const parts: string[] = [];
          for (let at = 0; at < body.length; ) {
            const n = 1 + int(Math.max(1, body.length - at));
            const piece = body.subarray(at, at + n).toString("latin1");
            const size = framing === "chunked-bad" && chance(0.3) ? pick(["zz", "-1", "ffffffffffffffff", `${(n + 5).toString(16)}`]) : n.toString(16);
            parts.push(`${size}${chance(0.1) ? ";ext=1" : ""}\r\n${piece}\r\n`);
            at += n;
          }
          parts.push(chance(0.9) ? `0\r\n${chance(0.1) ? "X-Trailer: t\r\n" : ""}\r\n` : "");
          bodyBytes = Buffer.from(parts.join(""), "latin1");
          closes = true;
          if (framing === "chunked-bad") answerable = false;
          break;
        }
        case "both":
          lines.push(`Content-Length: ${body.length}`, "Transfer-Encoding: chunked");
          bodyBytes = Buffer.from(`${body.length.toString(16)}\r\n${body.toString("latin1")}\r\n0\r\n\r\n`, "latin1");
          answerable = false;
          closes = true;
          break;
        case "length-short":
          lines.push(`Content-Length: ${Math.max(0, body.length - 1 - int(10))}`);
          bodyBytes = body;
          closes = true; // the rest is read as the next request
          break;
        case "length-long":
          lines.push(`Content-Length: ${body.length + 1 + int(100)}`);
          bodyBytes = body;
          answerable = false; // waits for bytes that never come: 408, or 413 at once
          closes = true;
          break;
        case "length-bad":
          lines.push(`Content-Length: ${pick(["-1", "abc", "1e3", "10, 20", "0x10", " 5"])}`);
          bodyBytes = body;
          answerable = false;
          closes = true;
          break;
        default:
          bodyBytes = body; // no framing: the bytes are read as the next request
          closes = true;
      }
      // Only POST /register (16 KiB) and POST /invites_api (4 KiB) on example.com take a body;
      // anywhere else (a request without Host included: 400 before any route) a body gets its
      // answer (413, 404, 400…) and the connection is closed unread.
      const path = target.replace(/^http:\/\/[^/]*/, "").split("?")[0];
      const takesBody = method === "POST" && sendsHost && host === "example.com" && (path === "/register" || path === "/invites_api");
      if (!takesBody || body.length > 4096) closes = true;
    }
    const head = method === "HEAD";
    const headBytes = Buffer.from(lines.join("\r\n") + "\r\n\r\n", "latin1");
    // A control byte in the head (a NUL from "\u{1F600}" written as Latin-1, a bare CR…): node's
    // parser may refuse the request (400) and close.
    if (lines.some((l) => /[\x00-\x08\x0a-\x1f\x7f]/.test(Buffer.from(l, "latin1").toString("latin1")))) {
      answerable = false;
      closes = true;
    }
    const data = Buffer.concat([headBytes, bodyBytes]);
    return { data, head, answerable, closes, badVersion };
  }

  /** One case: a single request, a pipeline, garbage, or a connection behaviour. */
  return function next(): FuzzCase {
    const roll = r();
    let kind: string;
    let msgs: Built[] = [];
    let tail: Buffer | undefined;
    let halfClose = false;
    let abort = false;
    let split = false;
    let slow = false;
    if (roll < 0.3) {
      kind = "valid";
      msgs = [request("valid")];
    } else if (roll < 0.68) {
      kind = "odd";
      msgs = [request("odd")];
    } else if (roll < 0.8) {
      kind = "pipelined";
      msgs = Array.from({ length: 2 + int(4) }, () => request(chance(0.7) ? "valid" : "odd"));
      if (chance(0.4)) tail = chance(0.5) ? Buffer.from("GARBAGE \u0001\u0002 nonsense\r\n\r\n", "latin1") : junk(1 + int(200));
    } else if (roll < 0.86) {
      kind = "garbage";
      tail = pick([
        () => junk(1 + int(2000)),
        () => Buffer.from("\r\n\r\n\r\n"),
        () => Buffer.from("GET\r\n\r\n"),
        () => Buffer.from(`GET / HTTP/1.1\r\n${"Host: example.com\r\n".repeat(int(3))}${"x".repeat(int(100))}`),
        () => Buffer.from("\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u01fc\u0003\u0003", "latin1"), // a TLS ClientHello
        () => Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      ])();
    } else if (roll < 0.93) {
      kind = "split";
      msgs = Array.from({ length: 1 + int(2) }, () => request(chance(0.7) ? "valid" : "odd"));
      split = true;
    } else if (roll < 0.965) {
      kind = "half-close";
      msgs = Array.from({ length: 1 + int(2) }, () => request("valid"));
      halfClose = true;
    } else if (roll < 0.985) {
      kind = "abort";
      const m = request(chance(0.5) ? "valid" : "odd");
      msgs = [{ ...m, data: m.data.subarray(0, int(m.data.length)) }];
      abort = true;
    } else {
      kind = "slow";
      msgs = [request(chance(0.6) ? "valid" : "odd")];
      slow = true;
    }
    // Requests that must be answered: well-formed ones, up to the first that may close.
    let mustAnswer = 0;
    for (const m of msgs) {
      if (!m.answerable) break;
      mustAnswer++;
      if (m.closes) break;
    }
    if (abort || slow) mustAnswer = 0;
    const whole = Buffer.concat([...msgs.map((m) => m.data), ...(tail ? [tail] : [])]);
    const chunks: FuzzCase["chunks"] = [];
    if (split || slow) {
      for (let at = 0; at < whole.length; ) {
        const n = slow ? 1 + int(20) : 1 + int(Math.max(1, whole.length / 3));
        chunks.push({ delay: slow ? 50 + int(200) : int(30), data: whole.subarray(at, at + n) });
        at += n;
        if (slow && chunks.length >= 25) break; // at most ~6 s of dripping
      }
    } else {
      chunks.push({ delay: 0, data: whole });
    }
    return {
      kind,
      chunks,
      halfClose,
      abort,
      requests: Math.max(1, msgs.length),
      mustAnswer,
      heads: msgs.map((m) => m.head),
      badVersion: msgs.some((m) => m.badVersion),
    };
  };
}
