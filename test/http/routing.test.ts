/** Dispatch: hosts, global routes, path normalisation, wildcards, ordering, HEAD (spec §3.3). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fetch from "node-fetch";
import type { HttpServer } from "../../src/http/server.js";
import { h1Of, raw, startServer, titleOf } from "./_helpers.js";

const t = suite<{ server: HttpServer; port: number; base: string; calls: string[] }>("http routing");

t.before(async (ctx) => {
  const { server, port, base } = await startServer({ closeTimeoutMs: 200 });
  ctx.server = server;
  ctx.port = port;
  ctx.base = base;
  ctx.calls = [];
  const calls = ctx.calls;
  server.addHost("example.com");
  server.addHost("[::1]");
  server.addRoute({ host: "example.com", method: "GET", path: "/hello", handler: () => "hello from example.com" });
  server.addRoute({ host: "[::1]", method: "GET", path: "/hello", handler: () => "hello from [::1]" });
  server.addRoute({ host: null, method: "GET", path: "/global", handler: () => "global app" });
  server.addRoute({
    host: "example.com",
    method: "GET",
    path: "/echo/*",
    handler: (e, rest) => JSON.stringify({ path: e.request.path, rest, query: e.request.url.query ?? null }),
  });
  // Specificity: exact beats wildcard, deeper beats shallower, undefined falls through.
  server.addRoute({ host: "example.com", method: "GET", path: "/a/*", handler: (_e, rest) => `a/* ${rest}` });
  server.addRoute({ host: "example.com", method: "GET", path: "/a/b/*", handler: (_e, rest) => `a/b/* ${rest}` });
  server.addRoute({ host: "example.com", method: "GET", path: "/a/b/c", handler: () => "exact a/b/c" });
  server.addRoute({
    host: "example.com",
    method: "GET",
    path: "/a/b/pass",
    handler: () => {
      calls.push("exact pass");
      return undefined;
    },
  });
  // Priority on the same key.
  server.addRoute({ host: "example.com", method: "GET", path: "/prio", handler: () => "low", priority: -5 });
  server.addRoute({ host: "example.com", method: "GET", path: "/prio", handler: () => "high", priority: 5 });
  server.addRoute({
    host: "example.com",
    method: "GET",
    path: "/prio",
    handler: () => {
      calls.push("mid");
      return undefined;
    },
  });
  server.addRoute({
    host: "example.com",
    method: "GET",
    path: "/head",
    handler: (e) => {
      calls.push(`GET handler saw ${e.request.method}`);
      return { headers: { x_side: "effect" }, body: "0123456789" };
    },
  });
  server.addRoute({ host: "example.com", method: "HEAD", path: "/own-head", handler: () => ({ headers: { x_head: "own" } }) });
  server.addRoute({ host: "example.com", method: "GET", path: "/own-head", handler: () => "from GET" });
  server.addRoute({ host: null, method: "GET", path: "/shadow", handler: () => "global wins" });
  server.addRoute({ host: "example.com", method: "GET", path: "/shadow", handler: () => "host loses" });
  server.addRoute({ host: "example.com", method: "GET", path: "/weird path", handler: () => "decoded" });
  server.addRoute({ host: "example.com", method: "GET", path: "/a%2Fb", handler: () => "never (decoded first)" });
  server.addRoute({ host: "example.com", method: "GET", path: "/x/y", handler: () => "x/y" });
});

t.after.each((ctx) => {
  ctx.calls.length = 0;
});

t.after(async (ctx) => {
  await ctx.server.close();
});

function get(ctx: { base: string }, path: string, headers: Record<string, string> = {}) {
  return fetch(ctx.base + path, { headers: { host: "example.com", ...headers } });
}

t("exact host match with the port stripped", async (ctx) => {
  const res = await get(ctx, "/hello", { host: "example.com:5280" });
  assert.is(res.status, 200);
  assert.is(await res.text(), "hello from example.com");
});

t("host matching is case-sensitive: unknown host page", async (ctx) => {
  const res = await get(ctx, "/hello", { host: "EXAMPLE.COM" });
  assert.is(res.status, 404);
  const html = await res.text();
  assert.is(titleOf(html), "404 Not Found");
  assert.ok(html.includes("Unknown host: EXAMPLE.COM"));
  assert.is(res.headers.get("access-control-allow-origin"), null);
});

t("unknown host gives 404 with the extra line", async (ctx) => {
  const res = await get(ctx, "/hello", { host: "nosuch.example" });
  assert.is(res.status, 404);
  const html = await res.text();
  assert.is(h1Of(html), "404 Not Found");
  assert.match(html, /Whatever you were looking for is not here\. (Where did you put it\?|It&apos;s behind you\.|Keep looking\.)/);
  assert.match(html, />Unknown host: nosuch\.example</);
});

t("IPv6 literal Host with port", async (ctx) => {
  const res = await get(ctx, "/hello", { host: "[::1]:5280" });
  assert.is(res.status, 200);
  assert.is(await res.text(), "hello from [::1]");
});

t("missing Host on HTTP/1.0 gives 400 with the extra line", async (ctx) => {
  const { responses } = await raw(ctx.port, "GET /hello HTTP/1.0\r\nUser-Agent: t\r\n\r\n");
  const res = responses[0]!;
  assert.is(res.statusLine, "HTTP/1.0 400 Bad Request");
  assert.is(titleOf(res.text), "400 Bad Request");
  assert.ok(res.text.includes("What kind of request do you call that??"));
  assert.ok(res.text.includes("Missing or invalid &apos;Host&apos; header"));
});

t("missing Host on HTTP/1.1 gives 400 too", async (ctx) => {
  const { responses } = await raw(ctx.port, "GET /hello HTTP/1.1\r\n\r\n");
  assert.is(responses[0]!.statusCode, 400);
  assert.ok(responses[0]!.text.includes("Missing or invalid &apos;Host&apos; header"));
});

t("global routes answer without any Host and before host routes", async (ctx) => {
  const { responses } = await raw(ctx.port, "GET /global HTTP/1.0\r\n\r\n");
  assert.is(responses[0]!.statusCode, 200);
  assert.is(responses[0]!.text, "global app");
  const res = await get(ctx, "/shadow");
  assert.is(await res.text(), "global wins");
});

t("absolute-form target overrides the Host header", async (ctx) => {
  const { responses } = await raw(ctx.port, "GET http://example.com:5280/hello?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
  assert.is(responses[0]!.statusCode, 200);
  assert.is(responses[0]!.text, "hello from example.com");
});

t("wildcard passes the rest of the path", async (ctx) => {
  let res = await get(ctx, "/echo/a/b.txt?q=1");
  assert.equal(JSON.parse(await res.text()), { path: "/echo/a/b.txt", rest: "a/b.txt", query: "q=1" });
  res = await get(ctx, "/echo/");
  assert.equal(JSON.parse(await res.text()), { path: "/echo/", rest: "", query: null });
  res = await get(ctx, "/echo");
  assert.is(res.status, 404, "the bare base is not covered by the wildcard");
});

t("path normalisation: // collapsed, percent-decoded", async (ctx) => {
  let res = await get(ctx, "//x///y");
  assert.is(await res.text(), "x/y");
  res = await get(ctx, "/weird%20path");
  assert.is(await res.text(), "decoded");
  res = await get(ctx, "/echo/a%2Fb%3F");
  assert.equal(JSON.parse(await res.text()).rest, "a/b?");
  res = await get(ctx, "/a%2Fb");
  assert.is(await res.text(), "a/* b", "%2F becomes a real slash before matching");
});

t("paths climbing above the root are rejected with 400 'Invalid path'", async (ctx) => {
  for (const target of ["/../etc/passwd", "/a/../../b", "/%2e%2e/x", "/echo/%2E%2E/%2e%2e/x"]) {
    const { responses } = await raw(ctx.port, `GET ${target} HTTP/1.1\r\nHost: example.com\r\n\r\n`);
    const res = responses[0]!;
    assert.is(res.statusCode, 400, target);
    assert.ok(res.text.includes("Invalid path"), target);
  }
  // ".." that stays below the root is left alone (it simply reaches the wildcard).
  const { responses } = await raw(ctx.port, "GET /echo/x/../y HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.equal(JSON.parse(responses[0]!.text).rest, "x/../y");
});

t("more specific routes first; exact before wildcard; undefined falls through", async (ctx) => {
  assert.is(await (await get(ctx, "/a/b/c")).text(), "exact a/b/c");
  assert.is(await (await get(ctx, "/a/b/d/e")).text(), "a/b/* d/e");
  assert.is(await (await get(ctx, "/a/x")).text(), "a/* x");
  assert.is(await (await get(ctx, "/a/b/pass")).text(), "a/b/* pass");
  assert.equal(ctx.calls, ["exact pass"]);
});

t("priority orders handlers of the same route", async (ctx) => {
  assert.is(await (await get(ctx, "/prio")).text(), "high");
  assert.equal(ctx.calls, [], "lower priorities never ran");
});

t("HEAD falls back to GET: same headers incl. Content-Length, no body", async (ctx) => {
  const { responses, raw: bytes } = await raw(
    ctx.port,
    "HEAD /head HTTP/1.1\r\nHost: example.com\r\n\r\nGET /hello HTTP/1.1\r\nHost: example.com\r\n\r\n",
    { expect: 2, head: [true, false] },
  );
  // Parsing the HEAD response as if it had no body must leave exactly the next response.
  const text = bytes.toString("latin1");
  const first = text.slice(0, text.indexOf("\r\n\r\n"));
  assert.ok(first.startsWith("HTTP/1.1 200 OK"));
  assert.ok(first.includes("Content-Length: 10"));
  assert.ok(first.includes("X-Side: effect"));
  assert.ok(text.slice(text.indexOf("\r\n\r\n") + 4).startsWith("HTTP/1.1 200 OK"), "no body bytes after HEAD headers");
  assert.equal(ctx.calls, ["GET handler saw HEAD"]);
  assert.is(responses.length, 2);
  assert.is(responses[1]!.text, "hello from example.com");
});

t("an explicit HEAD route wins over the GET fallback", async (ctx) => {
  const res = await fetch(ctx.base + "/own-head", { method: "HEAD", headers: { host: "example.com" } });
  assert.is(res.status, 200);
  assert.is(res.headers.get("x-head"), "own");
  assert.is(res.headers.get("content-length"), "0");
});

t("no 405: unknown method or path is a 404, OPTIONS too", async (ctx) => {
  for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
    const res = await fetch(ctx.base + "/hello", { method, headers: { host: "example.com" } });
    assert.is(res.status, 404, method);
    assert.is(res.headers.get("content-type"), "text/html; charset=utf-8");
  }
  const res = await get(ctx, "/nothing/here");
  assert.is(res.status, 404);
});

t("GET / on a known host without a route is 200 'Prosody is running!'", async (ctx) => {
  const res = await get(ctx, "/");
  assert.is(res.status, 200);
  assert.is(res.headers.get("content-type"), "text/html; charset=utf-8");
  assert.is(titleOf(await res.text()), "Prosody is running!");
});

t("removers unregister routes and hosts (reference counted)", async (ctx) => {
  const removeRoute = ctx.server.addRoute({ host: "example.com", method: "GET", path: "/temp", handler: () => "temp" });
  assert.is(await (await get(ctx, "/temp")).text(), "temp");
  removeRoute();
  assert.is((await get(ctx, "/temp")).status, 404);

  const r1 = ctx.server.addHost("twice.example");
  const r2 = ctx.server.addHost("twice.example");
  ctx.server.addRoute({ host: "twice.example", method: "GET", path: "/x", handler: () => "x" });
  r1();
  assert.is((await get(ctx, "/x", { host: "twice.example" })).status, 200);
  r2();
  r2();
  const res = await get(ctx, "/x", { host: "twice.example" });
  assert.is(res.status, 404);
  assert.ok((await res.text()).includes("Unknown host: twice.example"));
});

t("defaultHost serves unknown Host values", async () => {
  const { server, base } = await startServer({ defaultHost: "main.example" });
  try {
    server.addHost("main.example");
    server.addRoute({ host: "main.example", method: "GET", path: "/p", handler: () => "main" });
    const res = await fetch(base + "/p", { headers: { host: "other.example" } });
    assert.is(await res.text(), "main");
  } finally {
    await server.close();
  }
});

t.run();
