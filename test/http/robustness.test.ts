/** Hostile or unlucky input must never crash the server or leave a request unanswered. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import http from "node:http";
import net from "node:net";
import fetch from "node-fetch";
import type { HttpServer } from "../../src/http/server.js";
import { raw, sleep, startServer, titleOf, type LogLine } from "./_helpers.js";

interface Ctx {
  server: HttpServer;
  port: number;
  base: string;
  logs: LogLine[];
  seen: Array<{ path: string; rest?: string; query?: string; body?: string; size?: number }>;
  slowDone: number;
}

const t = suite<Ctx>("http robustness");

t.before(async (ctx) => {
  const s = await startServer({ maxContentSize: 1000, closeTimeoutMs: 3000 });
  Object.assign(ctx, s, { seen: [], slowDone: 0 });
  const { server } = s;
  server.addHost("example.com");
  server.addRoute({
    host: "example.com",
    method: "GET",
    path: "/files/*",
    handler: (e, rest) => {
      ctx.seen.push({ path: e.request.path, rest, query: e.request.url.query });
      return JSON.stringify({ path: e.request.path, rest });
    },
  });
  server.addRoute({
    host: "example.com",
    method: "POST",
    path: "/upload",
    handler: (e) => {
      ctx.seen.push({ path: e.request.path, body: e.request.body, size: e.request.rawBody.length });
      return `got ${e.request.rawBody.length}`;
    },
  });
  server.addRoute({ host: "example.com", method: "GET", path: "/ok", handler: () => "ok" });
  server.addRoute({
    host: "example.com",
    method: "GET",
    path: "/slow",
    handler: async () => {
      await sleep(150);
      ctx.slowDone++;
      return "slow done";
    },
  });
  server.addRoute({ host: "example.com", method: "GET", path: "/count/*", handler: (_e, rest) => `n=${rest}` });
});

t.after.each((ctx) => {
  ctx.seen.length = 0;
  ctx.logs.length = 0;
});

t.after(async (ctx) => {
  await ctx.server.close();
});

async function stillServing(ctx: Ctx) {
  const res = await fetch(ctx.base + "/ok", { headers: { host: "example.com" } });
  assert.is(await res.text(), "ok");
}

// --- request head size ---

t("a head just under 10 KiB is served", async (ctx) => {
  const req = `GET /ok HTTP/1.1\r\nHost: example.com\r\nX-Big: ${"A".repeat(10_000)}\r\n\r\n`;
  const { responses } = await raw(ctx.port, req);
  assert.is(responses[0]!.statusCode, 200);
});

t("a head over 10 KiB gets 431 and a close (Prosody hangs instead)", async (ctx) => {
  for (const size of [10_300, 100_000]) {
    const req = `GET /ok HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${"A".repeat(size)}\r\n\r\n`;
    const ex = await raw(ctx.port, req, { waitClose: true });
    assert.ok(ex.closed, `closed (${size})`);
    if (ex.responses[0]) {
      assert.is(ex.responses[0].statusLine, "HTTP/1.1 431 Request Header Fields Too Large");
      assert.is(titleOf(ex.responses[0].text), "431 Request Header Fields Too Large");
    } else {
      // The server may reset before the client finished writing a very large head.
      assert.ok(ex.error || ex.raw.length === 0);
    }
  }
  await stillServing(ctx);
});

t("a huge head trickled slowly is cut off too", async (ctx) => {
  const parts = ["GET /ok HTTP/1.1\r\nHost: example.com\r\n"];
  for (let i = 0; i < 30; i++) parts.push(`X-H${i}: ${"b".repeat(500)}\r\n`);
  const ex = await raw(ctx.port, parts, { waitClose: true });
  assert.ok(ex.closed);
  assert.is(ex.responses[0]?.statusCode, 431);
  await stillServing(ctx);
});

// --- body size ---

t("a body within the limit reaches the handler", async (ctx) => {
  const res = await fetch(ctx.base + "/upload", { method: "POST", headers: { host: "example.com" }, body: "x=1&y=é" });
  assert.is(await res.text(), "got 8");
  assert.equal(ctx.seen[0]!.body, "x=1&y=é");
});

t("a declared body over the limit: 413, closed, handler not run", async (ctx) => {
  const ex = await raw(ctx.port, "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5000\r\n\r\n" + "z".repeat(5000), {
    waitClose: true,
  });
  assert.is(ex.responses[0]!.statusLine, "HTTP/1.1 413 Payload Too Large");
  assert.is(ex.responses[0]!.headers["connection"], "close");
  assert.ok(ex.closed);
  assert.equal(ctx.seen, []);
  // GET with a huge Content-Length and no body at all (golden 31) is answered at once.
  const get = await raw(ctx.port, "GET /ok HTTP/1.1\r\nHost: example.com\r\nContent-Length: 99999999\r\n\r\n", { waitClose: true });
  assert.is(get.responses[0]!.statusCode, 413);
  await stillServing(ctx);
});

t("a chunked body growing over the limit: 413 and closed", async (ctx) => {
  const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
  const parts = ["POST /upload HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"];
  for (let i = 0; i < 5; i++) parts.push(chunk("y".repeat(400)));
  parts.push("0\r\n\r\n");
  const ex = await raw(ctx.port, parts, { waitClose: true });
  assert.is(ex.responses[0]?.statusCode, 413);
  assert.ok(ex.closed);
  assert.equal(ctx.seen, []);
});

t("Expect: 100-continue with an oversized body is refused without 100", async (ctx) => {
  const ex = await raw(ctx.port, "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2000\r\nExpect: 100-continue\r\n\r\n", {
    waitClose: true,
  });
  assert.is(ex.responses[0]!.statusCode, 413);
  const ok = await raw(ctx.port, "POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", {
    expect: 1,
    timeoutMs: 500,
  });
  assert.ok(ok.raw.toString("latin1").startsWith("HTTP/1.1 100 Continue"));
});

// --- encodings ---

t("invalid percent-encoded UTF-8 never throws: decoded byte-wise", async (ctx) => {
  const { responses } = await raw(ctx.port, "GET /files/%FF%FEx%C3%A9?q=%FF HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.is(responses[0]!.statusCode, 200);
  assert.is(ctx.seen[0]!.rest, "\u00ff\u00fex\u00c3\u00a9", "invalid sequence: Latin-1 fallback");
  assert.is(ctx.seen[0]!.query, "q=%FF", "the query stays raw");
  await raw(ctx.port, "GET /files/%C3%A9t%C3%A9 HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.is(ctx.seen[1]!.rest, "été", "valid UTF-8 is decoded");
  await raw(ctx.port, "GET /files/100%25%zz% HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.is(ctx.seen[2]!.rest, "100%%zz%", "malformed escapes stay literal");
  const r = await raw(ctx.port, "GET /%ED%A0%80/%00 HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.is(r.responses[0]!.statusCode, 404);
});

t("raw non-ASCII bytes or control characters in the target: 400, closed", async (ctx) => {
  const ex = await raw(ctx.port, Buffer.from("GET /files/\xe9 HTTP/1.1\r\nHost: example.com\r\n\r\n", "latin1"), {
    waitClose: true,
  });
  assert.is(ex.responses[0]!.statusCode, 400);
  assert.ok(ex.closed);
  await stillServing(ctx);
});

// --- odd Host headers ---

t("odd Host headers", async (ctx) => {
  const ask = async (hostLine: string) =>
    (await raw(ctx.port, `GET /ok HTTP/1.1\r\n${hostLine}\r\n\r\n`, { waitClose: false, timeoutMs: 1500 })).responses[0]!;
  let res = await ask("Host: ");
  assert.is(res.statusCode, 400);
  assert.ok(res.text.includes("Missing or invalid &apos;Host&apos; header"));
  res = await ask("Host: :5280");
  assert.is(res.statusCode, 400);
  res = await ask("Host: a b");
  assert.is(res.statusCode, 400, "whitespace makes the Host invalid");
  res = await ask("Host: \texample.com ");
  assert.is(res.text, "ok", "surrounding whitespace is not part of the value");
  res = await ask("Host: [::1]:5280");
  assert.is(res.statusCode, 404);
  assert.ok(res.text.includes("Unknown host: [::1]"));
  const long = "h".repeat(5000) + ".example";
  res = await ask(`Host: ${long}`);
  assert.is(res.statusCode, 404);
  assert.ok(res.text.includes(`Unknown host: ${long}`));
  res = await ask("Host: <script>x</script>");
  assert.ok(res.text.includes("Unknown host: &lt;script&gt;x&lt;/script&gt;"));
  res = await ask("Host: example.com\r\nHost: other");
  assert.is(res.statusCode, 404, "duplicates are joined with ','");
  assert.ok(res.text.includes("Unknown host: example.com,other"));
  res = await ask("Host: example.com:");
  assert.is(res.text, "ok");
  await stillServing(ctx);
});

t("absolute-form request targets", async (ctx) => {
  let ex = await raw(ctx.port, "GET http://example.com/ok HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.is(ex.responses[0]!.text, "ok");
  ex = await raw(ctx.port, "GET http://user@example.com:80/files/a?b=c HTTP/1.1\r\n\r\n");
  assert.is(ex.responses[0]!.statusCode, 200);
  assert.equal(ctx.seen.at(-1), { path: "/files/a", rest: "a", query: "b=c" });
  ex = await raw(ctx.port, "GET http://EXAMPLE.com/ok HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.is(ex.responses[0]!.statusCode, 404);
  ex = await raw(ctx.port, "GET https://example.com HTTP/1.1\r\n\r\n");
  assert.is(ex.responses[0]!.statusCode, 200, "empty path is '/' (running page)");
});

// --- protocol errors ---

t("malformed request line: 400 and closed; HTTP/2.0: 505 and closed", async (ctx) => {
  let ex = await raw(ctx.port, "GARBAGE\r\n\r\n", { waitClose: true });
  assert.is(ex.responses[0]!.statusCode, 400);
  assert.ok(ex.closed);
  ex = await raw(ctx.port, "GET /ok HTTP/2.0\r\nHost: example.com\r\n\r\n", { waitClose: true });
  assert.is(ex.responses[0]!.statusCode, 505);
  assert.ok(ex.closed);
  ex = await raw(ctx.port, "GET /ok HTTP/1.1\r\nBad Header Name: x\r\n\r\n", { waitClose: true });
  assert.is(ex.responses[0]!.statusCode, 400);
  await stillServing(ctx);
});

// --- concurrency ---

t("many concurrent keep-alive connections", async (ctx) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  try {
    const results = await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        fetch(`${ctx.base}/count/${i}`, { agent, headers: { host: "example.com" } }).then((r) => r.text()),
      ),
    );
    results.forEach((text, i) => assert.is(text, `n=${i}`));
  } finally {
    agent.destroy();
  }
  // Pipelined requests on 50 raw sockets, answered in order.
  const exchanges = await Promise.all(
    Array.from({ length: 50 }, (_, s) => {
      const reqs = Array.from({ length: 5 }, (_, i) => `GET /count/${s}-${i} HTTP/1.1\r\nHost: example.com\r\n\r\n`).join("");
      return raw(ctx.port, reqs, { expect: 5, timeoutMs: 5000 });
    }),
  );
  exchanges.forEach((ex, s) => {
    assert.equal(
      ex.responses.map((r) => r.text),
      Array.from({ length: 5 }, (_, i) => `n=${s}-${i}`),
    );
  });
});

// --- disconnects ---

t("a client disconnecting mid-body does not run the handler or crash", async (ctx) => {
  const socket = net.connect(ctx.port, "127.0.0.1");
  await new Promise((r) => socket.once("connect", r));
  socket.write("POST /upload HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\n0123456789");
  await sleep(30);
  socket.destroy();
  await sleep(30);
  assert.equal(ctx.seen, []);
  await stillServing(ctx);
});

t("a client disconnecting while its handler is pending", async (ctx) => {
  const before = ctx.slowDone;
  const socket = net.connect(ctx.port, "127.0.0.1");
  await new Promise((r) => socket.once("connect", r));
  socket.write("GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n");
  await sleep(30);
  socket.destroy();
  await sleep(200);
  assert.is(ctx.slowDone, before + 1, "the handler finished");
  assert.not.ok(ctx.logs.some((l) => l.level === "error"));
  await stillServing(ctx);
});

t("a client disconnecting in the middle of the head", async (ctx) => {
  const socket = net.connect(ctx.port, "127.0.0.1");
  await new Promise((r) => socket.once("connect", r));
  socket.write("GET /ok HTTP/1.1\r\nHo");
  socket.destroy();
  await sleep(20);
  await stillServing(ctx);
});

// --- graceful close (runs last: closes the shared server) ---

t("close(): in-flight requests finish, idle keep-alive sockets close, new connections refused", async (ctx) => {
  // An idle keep-alive connection...
  const idle = raw(ctx.port, "GET /ok HTTP/1.1\r\nHost: example.com\r\n\r\n", { waitClose: true, timeoutMs: 3000 });
  await sleep(50);
  // ...and a slow request in flight.
  const slow = raw(ctx.port, "GET /slow HTTP/1.1\r\nHost: example.com\r\n\r\n", { waitClose: true, timeoutMs: 3000 });
  await sleep(30);
  const started = Date.now();
  await ctx.server.close();
  const elapsed = Date.now() - started;
  const slowEx = await slow;
  assert.is(slowEx.responses[0]!.text, "slow done");
  assert.is(slowEx.responses[0]!.headers["connection"], "close", "the last response announces the close");
  assert.ok(slowEx.closed);
  const idleEx = await idle;
  assert.is(idleEx.responses[0]!.text, "ok");
  assert.ok(idleEx.closed, "idle keep-alive connection closed");
  assert.ok(elapsed < 2500, `close waited only for the slow request, not the full timeout (${elapsed} ms)`);
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(ctx.port, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.on("error", () => resolve(true));
  });
  assert.ok(refused);
  await ctx.server.close(); // idempotent
});

t("close() is bounded when a handler never answers", async () => {
  const { server, port } = await startServer({ closeTimeoutMs: 200 });
  server.addHost("h");
  server.addRoute({ host: "h", method: "GET", path: "/never", handler: () => new Promise(() => undefined) });
  const pending = raw(port, "GET /never HTTP/1.1\r\nHost: h\r\n\r\n", { waitClose: true, timeoutMs: 3000 });
  await sleep(30);
  const started = Date.now();
  await server.close();
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 150 && elapsed < 1500, `bounded wait (${elapsed} ms)`);
  const ex = await pending;
  assert.ok(ex.closed);
  assert.is(ex.responses.length, 0);
});

t.run();
