/** Handler return values, header casing, wire format and error pages (spec §3.4, §3.5, §3.7). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fetch from "node-fetch";
import type { HttpServer } from "../../src/http/server.js";
import type { HttpHandler } from "../../src/http/types.js";
import { h1Of, headerNames, raw, sleep, startServer, titleOf, type LogLine } from "./_helpers.js";

interface Ctx {
  server: HttpServer;
  port: number;
  base: string;
  logs: LogLine[];
  calls: string[];
}

const t = suite<Ctx>("http responses");

const CORS = {
  access_control_allow_methods: "GET, OPTIONS",
  access_control_allow_headers: "Content-Type",
  access_control_max_age: "7200",
  access_control_allow_origin: "*",
};

t.before(async (ctx) => {
  const s = await startServer({ closeTimeoutMs: 200 });
  Object.assign(ctx, s, { calls: [] });
  const { server } = s;
  server.addHost("example.com");
  const route = (path: string, handler: HttpHandler, method = "GET") =>
    server.addRoute({ host: "example.com", method, path, handler });

  route("/undefined", () => {
    ctx.calls.push("first");
    return undefined;
  });
  route("/undefined", () => {
    ctx.calls.push("second");
    return null;
  });
  route("/deferred", (e) => {
    setTimeout(() => {
      e.response.statusCode = 202;
      e.response.headers.content_type = "text/plain";
      e.response.send("late body");
    }, 20);
    return true;
  });
  route("/201", () => 201);
  route("/204", () => 204);
  route("/418", () => 418);
  route("/599", () => 599);
  route("/bad-status", () => 42);
  route("/string", () => "plain string");
  route("/buffer", () => Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  route("/object", () => ({
    statusCode: 202,
    status: "Accepted Eventually",
    headers: { x_custom_header: "yes", content_type: "application/json" },
    body: '{"ok":true}',
  }));
  route("/unicode-reason", () => ({ statusCode: 200, status: "Très bien", body: "corps é" }));
  route("/echo-header", (e) => ({ headers: { x_echo: e.request.headers.x_name ?? "" }, body: e.request.headers.x_name ?? "" }));
  route("/object-snake", () => ({ status_code: 207, body: "multi" }));
  route("/error-object", () => ({ code: 409, text: "Already <there>" }));
  route("/error-nocode", () => ({ type: "cancel", condition: "internal-server-error", text: "Broken store" }));
  route("/promise", async () => {
    await sleep(5);
    return "resolved";
  });
  route("/promise-undefined", async () => {
    ctx.calls.push("async first");
    return undefined;
  });
  route("/promise-undefined", () => "after async");
  route("/sent-and-undefined", (e) => {
    e.response.send("sent directly");
    return undefined;
  });
  route("/sent-and-undefined", () => {
    ctx.calls.push("should not run");
    return "second";
  });
  route("/throw", () => {
    throw new Error("secret detail");
  });
  route("/reject", async () => {
    await sleep(1);
    throw new TypeError("rejected detail");
  });
  route("/throw-after-send", (e) => {
    e.response.send("ok before throw");
    throw new Error("late failure");
  });
  const evil = { toString: () => { throw new Error("evil toString"); } };
  route("/evil-deferred", (e) => {
    setTimeout(() => e.response.send(evil as unknown as string), 5);
    return true;
  });
  route("/evil-header", () => ({ headers: { x_evil: evil as unknown as string }, body: "x" }));
  route("/headers", () => ({
    headers: {
      content_type: "text/plain",
      access_control_allow_origin: "*",
      "x-dashed-name": "1",
      ETAG: '"abc"',
      www_authenticate: "Bearer",
      "bad header": "dropped",
      x_injection: "a\r\nSet-Cookie: evil=1",
      x_unicode: "é✓",
    },
    body: "h",
  }));
  route("/forbidden", (e) => {
    Object.assign(e.response.headers, CORS);
    return 403;
  });
  route("/created", (e) => {
    Object.assign(e.response.headers, CORS);
    return { statusCode: 201, headers: { location: "http://example.com:15280/invites_page?abc" } };
  });
  route("/moved", () => ({ statusCode: 301, headers: { location: "/moved/" } }));
  route("/options-like", () => "", "OPTIONS");
  route("/conn-close", () => ({ headers: { connection: "close" }, body: "bye" }));
  route("/custom-length", () => ({ headers: { content_length: "999", transfer_encoding: "chunked" }, body: "abc" }));
});

t.after.each((ctx) => {
  ctx.calls.length = 0;
  ctx.logs.length = 0;
});

t.after(async (ctx) => {
  await ctx.server.close();
});

function get(ctx: Ctx, path: string, init: { method?: string; headers?: Record<string, string> } = {}) {
  return fetch(ctx.base + path, { method: init.method ?? "GET", headers: { host: "example.com", ...init.headers } });
}

async function rawGet(ctx: Ctx, path: string, extra = "", version = "1.1") {
  const { responses, closed } = await raw(ctx.port, `GET ${path} HTTP/${version}\r\nHost: example.com\r\n${extra}\r\n`, {
    waitClose: version === "1.0" || extra.toLowerCase().includes("close"),
    timeoutMs: 1500,
  });
  return { res: responses[0]!, closed };
}

// --- return values ---

t("undefined and null pass to the next handler, then 404", async (ctx) => {
  const res = await get(ctx, "/undefined");
  assert.is(res.status, 404);
  assert.equal(ctx.calls, ["first", "second"]);
});

t("true defers to response.send()", async (ctx) => {
  const res = await get(ctx, "/deferred");
  assert.is(res.status, 202);
  assert.is(res.headers.get("content-type"), "text/plain");
  assert.is(await res.text(), "late body");
});

t("numbers below 400: status with an empty body and no Content-Type", async (ctx) => {
  const { res } = await rawGet(ctx, "/201");
  assert.is(res.statusLine, "HTTP/1.1 201 Created");
  assert.equal(headerNames(res), ["Connection", "Content-Length", "Date"]);
  assert.is(res.headers["content-length"], "0");
});

t("204 carries no Content-Length and no body", async (ctx) => {
  const { res } = await rawGet(ctx, "/204");
  assert.is(res.statusLine, "HTTP/1.1 204 No Content");
  assert.equal(headerNames(res), ["Connection", "Date"]);
});

t("numbers >= 400 get the error page", async (ctx) => {
  const res = await get(ctx, "/418");
  assert.is(res.status, 418);
  assert.is(res.headers.get("content-type"), "text/html; charset=utf-8");
  const html = await res.text();
  assert.is(titleOf(html), "418 I&apos;m a teapot");
  assert.is(h1Of(html), "418 I&apos;m a teapot");
  assert.ok(html.includes("That&apos;s all I know."));
  const { res: r599 } = await rawGet(ctx, "/599");
  assert.is(r599.statusLine, "HTTP/1.1 599 Unassigned");
});

t("an invalid status number is a logged 500", async (ctx) => {
  const res = await get(ctx, "/bad-status");
  assert.is(res.status, 500);
  assert.ok(ctx.logs.some((l) => l.level === "error" && l.msg.includes("invalid status 42")));
});

t("string: 200 body without Content-Type", async (ctx) => {
  const { res } = await rawGet(ctx, "/string");
  assert.is(res.statusLine, "HTTP/1.1 200 OK");
  assert.is(res.text, "plain string");
  assert.equal(headerNames(res), ["Connection", "Content-Length", "Date"]);
});

t("Buffer: raw bytes", async (ctx) => {
  const res = await get(ctx, "/buffer");
  assert.equal([...new Uint8Array(await res.arrayBuffer())], [0xde, 0xad, 0xbe, 0xef]);
});

t("object: status, custom reason, merged headers, body", async (ctx) => {
  const { res } = await rawGet(ctx, "/object");
  assert.is(res.statusLine, "HTTP/1.1 202 Accepted Eventually");
  assert.is(res.headers["x-custom-header"], "yes");
  assert.is(res.headers["content-type"], "application/json");
  assert.is(res.text, '{"ok":true}');
  const snake = await get(ctx, "/object-snake");
  assert.is(snake.status, 207);
  assert.is(await snake.text(), "multi");
});

t("error objects: their code and text as the extra line", async (ctx) => {
  let res = await get(ctx, "/error-object");
  assert.is(res.status, 409);
  let html = await res.text();
  assert.is(titleOf(html), "409 Conflict");
  assert.ok(html.includes("Already &lt;there&gt;"));
  res = await get(ctx, "/error-nocode");
  assert.is(res.status, 500);
  html = await res.text();
  assert.ok(html.includes("Broken store"));
  assert.match(html, /(Gremlins\.|It broke\.|Don&apos;t look at me\.) Check your error log for more info\./);
});

t("promises are awaited; resolving undefined continues with the next handler", async (ctx) => {
  assert.is(await (await get(ctx, "/promise")).text(), "resolved");
  assert.is(await (await get(ctx, "/promise-undefined")).text(), "after async");
  assert.equal(ctx.calls, ["async first"]);
});

t("a response sent directly is not sent twice", async (ctx) => {
  const { responses } = await raw(
    ctx.port,
    "GET /sent-and-undefined HTTP/1.1\r\nHost: example.com\r\n\r\nGET /string HTTP/1.1\r\nHost: example.com\r\n\r\n",
    { expect: 2 },
  );
  assert.is(responses[0]!.text, "sent directly");
  assert.is(responses[1]!.text, "plain string");
  assert.equal(ctx.calls, []);
});

// --- failures ---

t("a throwing handler: logged with stack, 500 page, connection closed", async (ctx) => {
  const { res, closed } = await rawGet(ctx, "/throw", "", "1.1");
  assert.is(res.statusLine, "HTTP/1.1 500 Internal Server Error");
  assert.is(res.headers["connection"], "close");
  assert.is(res.headers["content-type"], "text/html; charset=utf-8");
  assert.is(Number(res.headers["content-length"]), res.body.length);
  assert.not.ok(res.text.includes("secret detail"), "details stay in the log");
  assert.match(res.text, /Check your error log for more info\./);
  const log = ctx.logs.find((l) => l.level === "error")!;
  assert.ok(log.msg.includes("GET example.com/throw"));
  assert.ok(log.msg.includes("secret detail"));
  assert.ok(log.msg.includes("responses.test.ts"), "stack trace logged");
  const again = await raw(ctx.port, "GET /throw HTTP/1.1\r\nHost: example.com\r\n\r\n", { waitClose: true, timeoutMs: 1500 });
  assert.ok(again.closed, "server closes after a handler failure");
});

t("a rejecting handler: 500 page", async (ctx) => {
  const res = await get(ctx, "/reject");
  assert.is(res.status, 500);
  assert.ok(ctx.logs.some((l) => l.msg.includes("rejected detail")));
  // and the server keeps serving
  assert.is(await (await get(ctx, "/string")).text(), "plain string");
});

t("throwing after sending is only logged", async (ctx) => {
  const res = await get(ctx, "/throw-after-send");
  assert.is(res.status, 200);
  assert.is(await res.text(), "ok before throw");
  assert.ok(ctx.logs.some((l) => l.msg.includes("late failure")));
});

t("http_errors_detailed shows the exception message", async () => {
  const { server, base } = await startServer({ errorMessages: { detailed: true, messages: { 403: "Go away." } } });
  try {
    server.addHost("h");
    server.addRoute({ host: "h", method: "GET", path: "/x", handler: () => { throw new Error("<detail>"); } });
    server.addRoute({ host: "h", method: "GET", path: "/f", handler: () => 403 });
    const html = await (await fetch(base + "/x", { headers: { host: "h" } })).text();
    assert.ok(html.includes("&lt;detail&gt;"));
    const f = await (await fetch(base + "/f", { headers: { host: "h" } })).text();
    assert.ok(f.includes("Go away."));
  } finally {
    await server.close();
  }
});

t("a body or header that cannot be stringified: 500, nothing escapes into the handler", async (ctx) => {
  for (const path of ["/evil-deferred", "/evil-header"]) {
    const { responses, closed } = await raw(ctx.port, `GET ${path} HTTP/1.1\r\nHost: example.com\r\n\r\n`, { waitClose: true });
    assert.is(responses[0]!.statusCode, 500, path);
    assert.ok(closed);
  }
  assert.ok(ctx.logs.some((l) => l.level === "error" && l.msg.includes("evil toString")));
});

// --- headers ---

t("header names are Title-Cased; values are made safe", async (ctx) => {
  const { res } = await rawGet(ctx, "/headers");
  const names = headerNames(res);
  for (const n of ["Content-Type", "Access-Control-Allow-Origin", "X-Dashed-Name", "Etag", "Www-Authenticate"]) {
    assert.ok(names.includes(n), n);
  }
  assert.not.ok(names.some((n) => n.toLowerCase().includes("bad")), "invalid header names are dropped");
  assert.not.ok(names.includes("Set-Cookie"), "no header injection");
  assert.is(res.headers["x-injection"], "a Set-Cookie: evil=1");
  assert.is(Buffer.from(res.headers["x-unicode"]!, "latin1").toString("utf8"), "é✓", "UTF-8 bytes on the wire");
  assert.ok(ctx.logs.some((l) => l.level === "warn" && l.msg.includes("bad header")));
});

t("non-ASCII reason phrase and body are sent as UTF-8 bytes", async (ctx) => {
  const { res } = await rawGet(ctx, "/unicode-reason");
  assert.is(Buffer.from(res.reason, "latin1").toString("utf8"), "Très bien");
  assert.is(res.text, "corps é");
  assert.is(res.headers["content-length"], "8");
});

t("a UTF-8 request header echoed into a response header round-trips", async (ctx) => {
  const { responses } = await raw(ctx.port, Buffer.concat([
    Buffer.from("GET /echo-header HTTP/1.1\r\nHost: example.com\r\nX-Name: "),
    Buffer.from("Zoë ✓", "utf8"),
    Buffer.from("\r\n\r\n"),
  ]));
  const res = responses[0]!;
  assert.is(res.text, "Zoë ✓");
  assert.is(Buffer.from(res.headers["x-echo"]!, "latin1").toString("utf8"), "Zoë ✓");
});

t("Content-Length is computed from the body; Transfer-Encoding never sent", async (ctx) => {
  const { res } = await rawGet(ctx, "/custom-length");
  assert.is(res.headers["content-length"], "3");
  assert.is(res.headers["transfer-encoding"], undefined);
  assert.is(res.text, "abc");
});

// --- wire shapes compared with the golden transcripts (header order is irrelevant) ---

t("golden 403 shape (matched route with CORS headers)", async (ctx) => {
  const { res } = await rawGet(ctx, "/forbidden");
  assert.is(res.statusLine, "HTTP/1.1 403 Forbidden");
  assert.equal(headerNames(res), [
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Origin",
    "Access-Control-Max-Age",
    "Connection",
    "Content-Length",
    "Content-Type",
    "Date",
  ]);
  assert.is(res.headers["connection"], "Keep-Alive");
  assert.is(res.headers["content-type"], "text/html; charset=utf-8");
  assert.match(res.headers["date"]!, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  assert.is(titleOf(res.text), "403 Forbidden");
  assert.ok(res.text.includes("You&apos;re not allowed to do that."));
});

t("golden 201 shape (no Content-Type)", async (ctx) => {
  const { res } = await rawGet(ctx, "/created");
  assert.is(res.statusLine, "HTTP/1.1 201 Created");
  assert.equal(headerNames(res), [
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Origin",
    "Access-Control-Max-Age",
    "Connection",
    "Content-Length",
    "Date",
    "Location",
  ]);
  assert.is(res.headers["content-length"], "0");
});

t("golden 404 shape (unmatched route)", async (ctx) => {
  const { res } = await rawGet(ctx, "/nope");
  assert.is(res.statusLine, "HTTP/1.1 404 Not Found");
  assert.equal(headerNames(res), ["Connection", "Content-Length", "Content-Type", "Date"]);
  assert.is(Number(res.headers["content-length"]), res.body.length);
});

t("golden 400 shape (HTTP/1.0 without Host): no Connection header, closed", async (ctx) => {
  const { responses, closed } = await raw(ctx.port, "GET /x HTTP/1.0\r\n\r\n", { waitClose: true });
  const res = responses[0]!;
  assert.is(res.statusLine, "HTTP/1.0 400 Bad Request");
  assert.equal(headerNames(res), ["Content-Length", "Content-Type", "Date"]);
  assert.ok(closed);
});

t("golden 301 shape", async (ctx) => {
  const { res } = await rawGet(ctx, "/moved");
  assert.is(res.statusLine, "HTTP/1.1 301 Moved Permanently");
  assert.equal(headerNames(res), ["Connection", "Content-Length", "Date", "Location"]);
  assert.is(res.headers["content-length"], "0");
});

t("HTTP/1.0: status line echoes the version, no Connection header, then close", async (ctx) => {
  const { res, closed } = await rawGet(ctx, "/created", "", "1.0");
  assert.is(res.statusLine, "HTTP/1.0 201 Created");
  assert.not.ok(headerNames(res).includes("Connection"));
  assert.ok(closed);
});

t("HTTP/1.0 with keep-alive gets Connection: Keep-Alive and stays open", async (ctx) => {
  const req = "GET /string HTTP/1.0\r\nHost: example.com\r\nConnection: keep-alive\r\n\r\n";
  const { responses } = await raw(ctx.port, [req, req], { expect: 2 });
  assert.is(responses.length, 2);
  assert.is(responses[0]!.statusLine, "HTTP/1.0 200 OK");
  assert.is(responses[0]!.headers["connection"], "Keep-Alive");
});

t("Connection: close on HTTP/1.1 is echoed and honoured", async (ctx) => {
  const { res, closed } = await rawGet(ctx, "/string", "Connection: close\r\n");
  assert.is(res.headers["connection"], "close");
  assert.ok(closed);
});

t("a handler may ask to close the connection", async (ctx) => {
  const { res, closed } = await rawGet(ctx, "/conn-close", "Connection: close\r\n");
  assert.is(res.headers["connection"], "close");
  assert.ok(closed);
  const ka = await raw(ctx.port, "GET /conn-close HTTP/1.1\r\nHost: example.com\r\n\r\n", { waitClose: true, timeoutMs: 1500 });
  assert.is(ka.responses[0]!.headers["connection"], "close");
  assert.ok(ka.closed);
});

t("keep-alive and pipelining on one connection; never Keep-Alive:/Transfer-Encoding headers", async (ctx) => {
  const one = "GET /string HTTP/1.1\r\nHost: example.com\r\n\r\n";
  const { responses, closed } = await raw(ctx.port, one + one + one, { expect: 3 });
  assert.is(responses.length, 3);
  assert.not.ok(closed);
  for (const r of responses) {
    assert.is(r.headers["connection"], "Keep-Alive");
    assert.is(r.headers["keep-alive"], undefined);
    assert.is(r.headers["transfer-encoding"], undefined);
  }
});

t("empty OPTIONS answer: 200, Content-Length 0, no Content-Type", async (ctx) => {
  const { responses } = await raw(ctx.port, "OPTIONS /options-like HTTP/1.1\r\nHost: example.com\r\n\r\n");
  const res = responses[0]!;
  assert.is(res.statusLine, "HTTP/1.1 200 OK");
  assert.equal(headerNames(res), ["Connection", "Content-Length", "Date"]);
});

t("inject() runs the same pipeline without a socket", async (ctx) => {
  const r = await ctx.server.inject({ url: "/object", headers: { Host: "example.com" } });
  assert.is(r.statusCode, 202);
  assert.is(r.status, "Accepted Eventually");
  assert.is(r.headers["X-Custom-Header"], "yes");
  assert.is(r.text(), '{"ok":true}');
  const head = await ctx.server.inject({ method: "HEAD", url: "/string", headers: { Host: "example.com" } });
  assert.is(head.headers["Content-Length"], "12");
  assert.is(head.body.length, 0);
  const old = await ctx.server.inject({ url: "/x", httpVersion: "1.0" });
  assert.is(old.statusCode, 400);
  assert.ok(old.close);
});

t.run();
