/**
 * Issue 11 items 6 and 8 against a real `prosodyctl start` process with every bundled plugin:
 * the config options for timeouts and the per-address cap, /register's small body limit, a valid
 * request followed by garbage, and the no-store/no-referrer/nosniff/anti-framing headers on every
 * answer that carries an invite token (and not elsewhere).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import { prosodyctl } from "../helpers/cli.js";
import { rawRequest } from "../helpers/http.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";
import { raw, sleep } from "./_helpers.js";

const SECRET = {
  "cache-control": "no-store",
  "referrer-policy": "no-referrer",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "content-security-policy": "frame-ancestors 'none'",
};

let srv: ServerProcess;
let token: string;
let key: string;

test.before(async () => {
  srv = await startServerProcess(`
http_header_timeout = 1
http_request_timeout = 2
http_keepalive_timeout = 1
http_max_connections_per_ip = 4
trusted_proxies = { }
VirtualHost "example.com"
modules_enabled = { "http", "invites", "invites_api", "invites_page", "register_apps", "invites_register", "invites_register_web" }
`);
  const gen = await prosodyctl(["--config", srv.config, "mod_invites", "generate", "example.com"], { cwd: srv.dir });
  assert.is(gen.code, 0, gen.stdout + gen.stderr);
  token = /preauth=([A-Za-z0-9_-]+)/.exec(gen.stdout)?.[1] ?? "";
  assert.ok(token, `a token in ${JSON.stringify(gen.stdout)}`);
  const created = await prosodyctl(["--config", srv.config, "mod_invites_api", "create", "example.com", "limits"], { cwd: srv.dir });
  assert.is(created.code, 0, created.stdout + created.stderr);
  key = created.stdout.trim();
});

test.after(async () => {
  const code = await srv?.stop();
  assert.is(code, 0, srv?.output());
});

/** Connects (optionally from another loopback address), writes, reports what came back and when it closed. */
function session(write: (s: net.Socket) => void, opts: { waitMs?: number; localAddress?: string } = {}) {
  return new Promise<{ text: string; closedAfter?: number; firstByteAfter?: number }>((resolve) => {
    const socket = net.connect({ port: srv.port, host: "127.0.0.1", localAddress: opts.localAddress });
    const started = Date.now();
    let text = "";
    let firstByteAfter: number | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, firstByteAfter });
    }, opts.waitMs ?? 6000);
    socket.on("connect", () => write(socket));
    socket.on("data", (d) => {
      firstByteAfter ??= Date.now() - started;
      text += d.toString("latin1");
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closedAfter: Date.now() - started, firstByteAfter });
    });
  });
}

/** Status lines in arrival order (a response may follow the previous body without a line break). */
const statusLines = (text: string) => [...text.matchAll(/HTTP\/1\.[01] \d{3} [^\r]*/g)].map((m) => m[0]);

// --- item 6 ---

test("POST /register: a form within 16 KiB is read; over it 413 at once, before the body is sent", async () => {
  const form = `user=&password=x&token=${token}`;
  const ok = await rawRequest(srv.port, `POST /register HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`);
  assert.is(ok.status, 200);
  assert.match(ok.body.toString(), "Please fill in all fields.");
  const padded = `${form}&pad=${"p".repeat(16 * 1024 - form.length - 5)}`;
  assert.is(padded.length, 16 * 1024);
  const max = await rawRequest(srv.port, `POST /register HTTP/1.1\r\nHost: example.com\r\nContent-Length: ${padded.length}\r\n\r\n${padded}`);
  assert.is(max.status, 200, "exactly 16 KiB is accepted");
  const over = await raw(srv.port, `POST /register HTTP/1.1\r\nHost: example.com\r\nContent-Length: ${padded.length + 1}\r\n\r\n${padded}x`, { waitClose: true });
  assert.is(over.responses[0]!.statusLine, "HTTP/1.1 413 Payload Too Large");
  assert.ok(over.closed);
  // The 9 MB password: refused from the head, long before the client could send it.
  const big = await session((s) => {
    s.write(`POST /register HTTP/1.1\r\nHost: example.com\r\nContent-Length: ${9_000_000 + form.length}\r\n\r\n${form}&password=`);
    const piece = Buffer.alloc(64 * 1024, 0x70);
    let n = 0;
    const timer = setInterval(() => (s.destroyed || n++ > 140 ? clearInterval(timer) : s.write(piece)), 20);
  });
  assert.equal(statusLines(big.text), ["HTTP/1.1 413 Payload Too Large"]);
  assert.ok(big.firstByteAfter! < 1000, `413 after ${big.firstByteAfter} ms`);
  assert.ok(big.closedAfter !== undefined && big.closedAfter < 3000, `closed after ${big.closedAfter} ms`);
});

test("GET routes take no body; /invites_api takes at most 4 KiB", async () => {
  let r = await raw(srv.port, `GET /register?t=${token} HTTP/1.1\r\nHost: example.com\r\nContent-Length: 10\r\n\r\n0123456789`, { waitClose: true });
  assert.is(r.responses[0]!.statusCode, 413);
  r = await raw(srv.port, `POST /invites_api HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${key}\r\nContent-Length: 4097\r\n\r\n`, { waitClose: true });
  assert.is(r.responses[0]!.statusCode, 413);
  r = await raw(srv.port, `POST /invites_api HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${key}\r\nContent-Length: 2\r\n\r\n{}`);
  assert.is(r.responses[0]!.statusCode, 201);
});

test("http_header_timeout, http_request_timeout, http_keepalive_timeout (seconds)", async () => {
  const [head, silent, body, idle] = await Promise.all([
    session((s) => s.write("GET /register HTTP/1.1\r\nHost: exa")),
    session(() => undefined),
    session((s) => {
      s.write("POST /register HTTP/1.1\r\nHost: example.com\r\nContent-Length: 500\r\n\r\n");
      const timer = setInterval(() => (s.writable ? s.write("a") : clearInterval(timer)), 100);
    }),
    session((s) => s.write(`GET /register?t=${token} HTTP/1.1\r\nHost: example.com\r\n\r\n`)),
  ]);
  assert.equal(statusLines(head.text), ["HTTP/1.1 408 Request Timeout"]);
  assert.ok(head.closedAfter! >= 900 && head.closedAfter! < 3000, `head: closed after ${head.closedAfter} ms`);
  assert.ok(silent.closedAfter! >= 900 && silent.closedAfter! < 3000, `silent: closed after ${silent.closedAfter} ms`);
  assert.equal(statusLines(body.text), ["HTTP/1.1 408 Request Timeout"]);
  assert.ok(body.closedAfter! >= 1900 && body.closedAfter! < 4500, `slow body: closed after ${body.closedAfter} ms`);
  assert.equal(statusLines(idle.text), ["HTTP/1.1 200 OK"]);
  assert.ok(idle.closedAfter! < 3500, `idle keep-alive: closed after ${idle.closedAfter} ms`);
});

test("http_max_connections_per_ip: the connection over the cap is closed at once, other addresses are served", async () => {
  const held = Array.from({ length: 4 }, () => net.connect({ port: srv.port, host: "127.0.0.1", localAddress: "127.0.0.3" }));
  await Promise.all(held.map((s) => new Promise((r) => s.once("connect", r))));
  for (const s of held) s.on("error", () => undefined);
  await sleep(100);
  try {
    const refused = await session((s) => s.write("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), { localAddress: "127.0.0.3", waitMs: 3000 });
    assert.is(refused.text, "");
    assert.ok(refused.closedAfter !== undefined && refused.closedAfter < 800, `closed after ${refused.closedAfter} ms`);
    const other = await rawRequest(srv.port, `GET /register?t=${token} HTTP/1.1\r\nHost: example.com\r\n\r\n`);
    assert.is(other.status, 200);
  } finally {
    for (const s of held) s.destroy();
  }
});

test("a valid request followed by garbage on one connection: its answer, then 400", async () => {
  const ex = await raw(srv.port, `GET /register?t=${token} HTTP/1.1\r\nHost: example.com\r\n\r\nthis is not http\r\n\r\n`, { expect: 2, waitClose: true, timeoutMs: 5000 });
  assert.equal(ex.responses.map((r) => r.statusCode), [200, 400]);
  assert.match(ex.responses[0]!.text, token);
  assert.ok(ex.closed);
});

// --- item 8 ---

test("every answer that carries an invite token has no-store, no-referrer, nosniff and anti-framing", async () => {
  const get = (path: string, extra = "") => rawRequest(srv.port, `GET ${path} HTTP/1.1\r\nHost: example.com\r\n${extra}\r\n`);
  const post = (form: string) =>
    rawRequest(srv.port, `POST /register?t=${token} HTTP/1.1\r\nHost: example.com\r\nContent-Length: ${form.length}\r\n\r\n${form}`);
  const api = await get("/invites_api", `Authorization: Bearer ${key}\r\n`);
  const apiToken = /\?([A-Za-z0-9_-]{24})$/.exec(api.header("location") ?? "")?.[1];
  const carriers: Array<[string, Awaited<ReturnType<typeof get>>, number]> = [
    ["API 201 with Location", api, 201],
    ["API 303 with Location", await get(`/invites_api?redirect=1&key=${encodeURIComponent(key)}`), 303],
    ["landing page", await get(`/invites_page?${token}`), 200],
    ["setup page", await get(`/invites_page/setup/siskin-im?${token}`), 200],
    ["setup page, unknown app", await get(`/invites_page/setup/nosuch?${token}`), 404],
    ["setup redirect", await get(`/invites_page/setup?${token}`), 301],
    ["register form", await get(`/register?t=${token}`), 200],
    ["register redirect for a bad token", await get(`/register?t=bad${token}`), 303],
    ["register error page", await post(`user=a&password=&token=${token}`), 200],
    ["register 415", await rawRequest(srv.port, `POST /register?t=${token} HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx`), 415],
  ];
  assert.ok(apiToken, "the API's Location is the landing page");
  for (const [label, res, status] of carriers) {
    assert.is(res.status, status, label);
    for (const [name, value] of Object.entries(SECRET)) assert.is(res.header(name), value, `${label}: ${name}`);
  }
  // Success page: the app's stricter Prosody-compatible Cache-Control, still no-store.
  const done = await post(`user=limitsuser&password=goodpassword1&token=${token}`);
  assert.match(done.body.toString(), "limitsuser@example.com");
  assert.is(done.header("cache-control"), "no-cache, no-store, must-revalidate");
  for (const name of ["referrer-policy", "x-content-type-options", "x-frame-options", "content-security-policy"]) {
    assert.is(done.header(name), SECRET[name as keyof typeof SECRET], `success page: ${name}`);
  }
  // Answers that carry no token are left as Prosody sends them.
  for (const path of ["/register_apps/assets/logos/dino.svg", "/nosuch", "/"]) {
    const res = await get(path);
    for (const name of Object.keys(SECRET)) assert.is(res.header(name), undefined, `${path}: ${name}`);
  }
});

test("after all that the server still answers", async () => {
  const r = await rawRequest(srv.port, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.is(r.status, 200);
  assert.not.match(srv.output(), /\n\s+at /, "no stack trace in the log");
});

test.run();
