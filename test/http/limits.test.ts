/**
 * Issue 11 item 6 on the HTTP core, over real sockets: per-route body limits answered before the
 * body is read, head/request/keep-alive timeouts, the per-address connection cap, and a valid
 * request followed by garbage on one connection getting its own answer before the 400.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import type { HttpServer } from "../../src/http/server.js";
import { raw, sleep, startServer, type LogLine } from "./_helpers.js";

interface Ctx {
  server: HttpServer;
  port: number;
  logs: LogLine[];
  ran: string[];
}

const t = suite<Ctx>("http limits");

t.before(async (ctx) => {
  const s = await startServer({
    maxContentSize: 1_000_000,
    headerTimeoutMs: 600,
    requestTimeoutMs: 1200,
    keepAliveTimeoutMs: 500,
    closeTimeoutMs: 500,
  });
  Object.assign(ctx, s, { ran: [] });
  const { server } = s;
  server.addHost("h");
  server.addRoute({
    host: "h",
    method: "POST",
    path: "/form",
    maxContentSize: 100,
    handler: (e) => {
      ctx.ran.push(`form ${e.request.rawBody.length}`);
      return `form ${e.request.rawBody.length}`;
    },
  });
  server.addRoute({
    host: "h",
    method: "POST",
    path: "/big",
    maxContentSize: 50_000_000, // above the server's cap: the cap wins
    handler: (e) => {
      ctx.ran.push(`big ${e.request.rawBody.length}`);
      return `big ${e.request.rawBody.length}`;
    },
  });
  server.addRoute({
    host: "h",
    method: "GET",
    path: "/get",
    handler: () => {
      ctx.ran.push("get");
      return "got";
    },
  });
  server.addRoute({
    host: "h",
    method: "GET",
    path: "/slow",
    handler: async () => {
      await sleep(150);
      ctx.ran.push("slow");
      return "slow done";
    },
  });
});

t.after.each((ctx) => {
  ctx.ran.length = 0;
});

t.after(async (ctx) => {
  await ctx.server.close();
});

/** Connects, runs `write`, and reports what arrived and when the server closed (ms from connect). */
function session(
  port: number,
  write: (socket: net.Socket) => void,
  opts: { waitMs?: number; localAddress?: string } = {},
): Promise<{ text: string; closedAfter?: number; firstByteAfter?: number; error?: string }> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress: opts.localAddress });
    const started = Date.now();
    let text = "";
    let firstByteAfter: number | undefined;
    let error: string | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, firstByteAfter, error });
    }, opts.waitMs ?? 4000);
    socket.on("connect", () => write(socket));
    socket.on("data", (d) => {
      firstByteAfter ??= Date.now() - started;
      text += d.toString("latin1");
    });
    socket.on("error", (e) => (error = e.message));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closedAfter: Date.now() - started, firstByteAfter, error });
    });
  });
}

/** Status lines in arrival order (a response may follow the previous body without a line break). */
const statusLines = (text: string) => [...text.matchAll(/HTTP\/1\.[01] \d{3} [^\r]*/g)].map((m) => m[0]);

// --- per-route body limits ---

t("a body within the route's limit is served; one byte over is 413 without running the handler", async (ctx) => {
  const ok = await raw(ctx.port, `POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n${"a".repeat(100)}`);
  assert.is(ok.responses[0]!.text, "form 100");
  const over = await raw(ctx.port, `POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n${"a".repeat(101)}`, { waitClose: true });
  assert.is(over.responses[0]!.statusLine, "HTTP/1.1 413 Payload Too Large");
  assert.is(over.responses[0]!.headers["connection"], "close");
  assert.ok(over.closed);
  assert.equal(ctx.ran, ["form 100"]);
});

t("an oversized body is answered at once, before the client has sent it", async (ctx) => {
  // 8 MiB declared, sent in 64 KiB pieces every 20 ms (~2.6 s): the 413 must come long before.
  const piece = Buffer.alloc(64 * 1024, 0x61);
  const r = await session(ctx.port, (socket) => {
    socket.write(`POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: ${128 * piece.length}\r\n\r\n`);
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || sent++ >= 128) return clearInterval(timer);
      socket.write(piece);
    }, 20);
    socket.on("close", () => clearInterval(timer));
  });
  assert.equal(statusLines(r.text), ["HTTP/1.1 413 Payload Too Large"]);
  assert.ok(r.firstByteAfter! < 500, `413 after ${r.firstByteAfter} ms`);
  assert.ok(r.closedAfter !== undefined && r.closedAfter < 2000, `closed after ${r.closedAfter} ms`);
  assert.equal(ctx.ran, []);
});

t("a chunked body is cut off with 413 as soon as it passes the route's limit", async (ctx) => {
  const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
  const r = await session(ctx.port, (socket) => {
    socket.write(`POST /form HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n`);
    socket.write(chunk("x".repeat(80)));
    // The second chunk passes 100 bytes; the rest never comes.
    setTimeout(() => socket.writable && socket.write(chunk("y".repeat(80))), 50);
  });
  assert.equal(statusLines(r.text), ["HTTP/1.1 413 Payload Too Large"]);
  assert.ok(r.closedAfter !== undefined && r.closedAfter < 2000);
  assert.equal(ctx.ran, []);
});

t("a route's own limit never exceeds the server's cap", async (ctx) => {
  const r = await raw(ctx.port, `POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 1000001\r\n\r\n`, { waitClose: true });
  assert.is(r.responses[0]!.statusCode, 413);
  const ok = await raw(ctx.port, [`POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 200000\r\n\r\n`, Buffer.alloc(200_000, 0x62)]);
  assert.is(ok.responses[0]!.text, "big 200000");
});

t("GET routes take no body: 413, also chunked; an empty body is fine", async (ctx) => {
  let r = await raw(ctx.port, "GET /get HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", { waitClose: true });
  assert.is(r.responses[0]!.statusCode, 413);
  r = await raw(ctx.port, "GET /get HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", { waitClose: true });
  assert.is(r.responses[0]!.statusCode, 413);
  r = await raw(ctx.port, "GET /get HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  assert.is(r.responses[0]!.text, "got");
  r = await raw(ctx.port, "GET /get HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  assert.is(r.responses[0]!.text, "got");
  assert.equal(ctx.ran, ["get", "get"]);
});

t("a body sent where no route is: the normal 404 at once, connection closed, body not read", async (ctx) => {
  const r = await raw(ctx.port, "POST /nowhere HTTP/1.1\r\nHost: h\r\nContent-Length: 900000\r\n\r\n", { waitClose: true });
  assert.is(r.responses[0]!.statusCode, 404);
  assert.is(r.responses[0]!.headers["connection"], "close");
  assert.ok(r.closed);
});

t("inject() applies the same limits as the socket path", async (ctx) => {
  const over = await ctx.server.inject({ method: "POST", url: "/form", headers: { host: "h" }, body: "a".repeat(101) });
  assert.is(over.statusCode, 413);
  assert.ok(over.close);
  const get = await ctx.server.inject({ method: "GET", url: "/get", headers: { host: "h" }, body: "x" });
  assert.is(get.statusCode, 413);
  const ok = await ctx.server.inject({ method: "POST", url: "/form", headers: { host: "h" }, body: "a".repeat(100) });
  assert.is(ok.text(), "form 100");
  const nowhere = await ctx.server.inject({ method: "POST", url: "/nowhere", headers: { host: "h" }, body: "x" });
  assert.is(nowhere.statusCode, 404);
  assert.equal(ctx.ran, ["form 100"]);
});

t("misuse: a negative or non-numeric route limit throws when the route is added", (ctx) => {
  assert.throws(() => ctx.server.addRoute({ host: "h", method: "POST", path: "/x", handler: () => "", maxContentSize: -1 }), /maxContentSize/);
  assert.throws(() => ctx.server.addRoute({ host: "h", method: "POST", path: "/x", handler: () => "", maxContentSize: "5" as never }), /maxContentSize/);
});

// --- timeouts ---

t("a head that never completes: 408 and closed after the head timeout", async (ctx) => {
  const r = await session(ctx.port, (socket) => socket.write("GET /get HTTP/1.1\r\nHost: h\r\nX-Partial: "));
  assert.equal(statusLines(r.text), ["HTTP/1.1 408 Request Timeout"]);
  assert.ok(r.closedAfter! >= 500 && r.closedAfter! < 2500, `closed after ${r.closedAfter} ms`);
});

t("a connection that sends nothing is closed after the head timeout", async (ctx) => {
  const r = await session(ctx.port, () => undefined);
  assert.ok(r.closedAfter! >= 500 && r.closedAfter! < 2500, `closed after ${r.closedAfter} ms`);
});

t("a body that trickles in: 408 and closed after the request timeout, handler not run", async (ctx) => {
  const r = await session(ctx.port, (socket) => {
    socket.write("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n");
    const timer = setInterval(() => socket.writable && socket.write("a"), 100);
    socket.on("close", () => clearInterval(timer));
  });
  assert.equal(statusLines(r.text), ["HTTP/1.1 408 Request Timeout"]);
  assert.ok(r.closedAfter! >= 1100 && r.closedAfter! < 3500, `closed after ${r.closedAfter} ms`);
  assert.equal(ctx.ran, []);
});

t("an idle keep-alive connection is closed after the keep-alive timeout", async (ctx) => {
  const r = await session(ctx.port, (socket) => socket.write("GET /get HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert.equal(statusLines(r.text), ["HTTP/1.1 200 OK"]);
  assert.ok(r.closedAfter! >= 400 && r.closedAfter! < 2500, `closed after ${r.closedAfter} ms`);
});

// --- pipelining ---

t("a valid request followed by garbage: its own complete answer first, then 400, then close", async (ctx) => {
  let ex = await raw(ctx.port, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGARBAGE NONSENSE\r\n\r\n", { expect: 2, waitClose: true });
  assert.equal(ex.responses.map((r) => r.statusCode), [200, 400]);
  assert.is(ex.responses[0]!.text, "slow done");
  assert.ok(ex.closed);
  // A request with a body, garbage right behind it in the same packet.
  ex = await raw(ctx.port, "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\x00\x01junk\r\n\r\n", { expect: 2, waitClose: true });
  assert.equal(ex.responses.map((r) => r.statusCode), [200, 400]);
  assert.is(ex.responses[0]!.text, "form 3");
  // Several valid requests, then garbage: every answer in order, then the 400.
  ex = await raw(
    ctx.port,
    "GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /get HTTP/1.1\r\nHost: h\r\n\r\nGET /slow HTTP/1.1\r\nHost: h\r\n\r\nBAD REQUEST LINE HERE\r\n\r\n",
    { expect: 4, waitClose: true },
  );
  assert.equal(ex.responses.map((r) => r.statusCode), [200, 200, 200, 400]);
  assert.equal(ex.responses.slice(0, 3).map((r) => r.text), ["slow done", "got", "slow done"]);
});

t("a client that half-closes after its request still gets the answer, then the close", async (ctx) => {
  const r = await session(ctx.port, (socket) => socket.end("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert.equal(statusLines(r.text), ["HTTP/1.1 200 OK"]);
  assert.ok(r.text.endsWith("slow done"));
  assert.ok(r.closedAfter !== undefined && r.closedAfter < 1500);
  // Two pipelined, then the half-close: both answered.
  const two = await session(ctx.port, (socket) => socket.end("GET /slow HTTP/1.1\r\nHost: h\r\n\r\nGET /get HTTP/1.1\r\nHost: h\r\n\r\n"));
  assert.equal(statusLines(two.text), ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"]);
  assert.ok(two.text.endsWith("got"));
});

// --- found by the fuzz (fuzz.test.ts) ---

t("CONNECT is answered 404 and closed (node dropped the connection without an answer)", async (ctx) => {
  for (const target of ["/get", "example.com:443"]) {
    const ex = await raw(ctx.port, `CONNECT ${target} HTTP/1.1\r\nHost: h\r\n\r\n`, { waitClose: true });
    assert.is(ex.responses[0]?.statusLine, "HTTP/1.1 404 Not Found", target);
    assert.ok(ex.closed);
  }
  // Behind a pipelined request: that one's answer first.
  const ex = await raw(ctx.port, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\nCONNECT /get HTTP/1.1\r\nHost: h\r\n\r\n", { expect: 2, waitClose: true });
  assert.equal(ex.responses.map((r) => r.statusCode), [200, 404]);
});

t("an unknown Expect value is ignored (node answered a bare chunked 417)", async (ctx) => {
  const ex = await raw(ctx.port, "POST /form HTTP/1.1\r\nHost: h\r\nExpect: nonsense\r\nContent-Length: 3\r\n\r\nabc");
  assert.is(ex.responses[0]!.statusCode, 200);
  assert.is(ex.responses[0]!.text, "form 3");
});

t("Expect: 100-continue on pipelined requests: no 100 for a bodiless request, every answer framed by its Content-Length", async (ctx) => {
  // Found by the fuzz: node wrote the 100 into a queued (pipelined) response's output, which then
  // counted as part of an earlier answer's body; the next status line came 25 bytes late.
  const r = await session(ctx.port, (socket) =>
    socket.write(
      "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n" +
        "GET /get HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n" +
        "GET /get HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    ),
  );
  assert.equal(statusLines(r.text), ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"]);
  // Walk the stream by Content-Length: each answer must start exactly where the last one ended.
  const bodies: string[] = [];
  let rest = r.text;
  while (rest.length) {
    const end = rest.indexOf("\r\n\r\n");
    assert.ok(rest.startsWith("HTTP/1.1 "), `an answer starts here: ${JSON.stringify(rest.slice(0, 40))}`);
    const length = Number(/\r\nContent-Length: (\d+)/i.exec(rest.slice(0, end))?.[1] ?? 0);
    bodies.push(rest.slice(end + 4, end + 4 + length));
    rest = rest.slice(end + 4 + length);
  }
  assert.equal(bodies, ["slow done", "got", "got"]);
});

t("Expect: 100-continue with a body still to come gets the 100, then the answer", async (ctx) => {
  const r = await session(ctx.port, (socket) => {
    socket.write("POST /form HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n");
    setTimeout(() => socket.write("abc"), 100);
  });
  assert.equal(statusLines(r.text), ["HTTP/1.1 100 Continue", "HTTP/1.1 200 OK"]);
  assert.ok(r.text.endsWith("form 3"), r.text);
});

t("garbage inside a body that never completes is answered 400 at once", async (ctx) => {
  const r = await session(ctx.port, (socket) =>
    socket.write("POST /form HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\nZZZ not a chunk\r\n"),
  );
  assert.equal(statusLines(r.text), ["HTTP/1.1 400 Bad Request"]);
  assert.ok(r.closedAfter! < 1500, `closed after ${r.closedAfter} ms`);
  assert.equal(ctx.ran, []);
});

t.run();

// --- per-address connection cap (own servers: the options differ) ---

const cap = suite("http limits: connections per address");

cap("over the cap a connection is closed at once; other addresses and freed slots are served", async () => {
  const { server, port } = await startServer({ maxConnectionsPerIp: 3, trustedProxies: [], headerTimeoutMs: 5000, closeTimeoutMs: 200 });
  server.addHost("h");
  server.addRoute({ host: "h", method: "GET", path: "/get", handler: () => "got" });
  try {
    // Three half-open requests from 127.0.0.1 hold its three slots.
    const held = Array.from({ length: 3 }, () => net.connect(port, "127.0.0.1"));
    await Promise.all(held.map((s) => new Promise((r) => s.once("connect", r))));
    for (const s of held) s.write("GET /get HTTP/1.1\r\nHo");
    await sleep(100);
    assert.is(server.openConnections("127.0.0.1"), 3);
    const refused = await session(port, (s) => s.write("GET /get HTTP/1.1\r\nHost: h\r\n\r\n"), { waitMs: 3000 });
    assert.is(refused.text, "", "no answer");
    assert.ok(refused.closedAfter !== undefined && refused.closedAfter < 1000, `closed after ${refused.closedAfter} ms`);
    // Another client address is not affected.
    const other = await session(port, (s) => s.write("GET /get HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), { localAddress: "127.0.0.2" });
    assert.equal(statusLines(other.text), ["HTTP/1.1 200 OK"]);
    // A freed slot can be used again.
    held[0]!.destroy();
    await sleep(100);
    const again = await session(port, (s) => s.write("GET /get HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    assert.equal(statusLines(again.text), ["HTTP/1.1 200 OK"]);
    for (const s of held) s.destroy();
  } finally {
    await server.close();
  }
});

cap("trusted proxies are not capped (every client behind them shares their address)", async () => {
  const { server, port } = await startServer({ maxConnectionsPerIp: 2, headerTimeoutMs: 5000, closeTimeoutMs: 200 });
  server.addHost("h");
  server.addRoute({ host: "h", method: "GET", path: "/get", handler: () => "got" });
  try {
    const held = Array.from({ length: 5 }, () => net.connect(port, "127.0.0.1"));
    await Promise.all(held.map((s) => new Promise((r) => s.once("connect", r))));
    const r = await raw(port, "GET /get HTTP/1.1\r\nHost: h\r\n\r\n");
    assert.is(r.responses[0]!.text, "got");
    for (const s of held) s.destroy();
  } finally {
    await server.close();
  }
});

cap("misuse: a negative cap or timeout throws at construction", async () => {
  for (const [opts, name] of [
    [{ maxConnectionsPerIp: -1 }, "maxConnectionsPerIp"],
    [{ headerTimeoutMs: 0 }, "headerTimeoutMs"],
  ] as const) {
    const error = await startServer(opts).then(
      (s) => (void s.server.close(), undefined),
      (err: Error) => err,
    );
    assert.match(error?.message ?? "no error", name);
  }
});

cap.run();
