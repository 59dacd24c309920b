/** Pure helpers of the HTTP layer. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import fetch from "node-fetch";
import { reasonPhrase } from "../../src/http/codes.js";
import { errorMessage, renderErrorPage, xmlEscape } from "../../src/http/error-page.js";
import { clientInfo, headerMap, hostKey, parseTarget, percentDecode } from "../../src/http/request.js";
import { NameMemo } from "../../src/http/name-memo.js";
import { titleCaseHeader } from "../../src/http/response.js";
import { RouteTable } from "../../src/http/routes.js";
import { startServer } from "./_helpers.js";

const t = suite("http helpers");

t("parseTarget: origin form", () => {
  assert.equal(parseTarget("/a//b///c?x=1&y=%20"), { path: "/a/b/c", url: { path: "/a/b/c", query: "x=1&y=%20" } });
  assert.equal(parseTarget("/p?"), { path: "/p", url: { path: "/p", query: "" } });
  assert.equal(parseTarget("/p#frag"), { path: "/p", url: { path: "/p" } });
  assert.equal(parseTarget("*").path, "/*");
  assert.is(parseTarget("/a%2F%2Fb").path, "/a//b", "collapsing happens before decoding");
  assert.is(parseTarget("/a%20b").url.path, "/a%20b", "url.path stays raw");
});

t("parseTarget: absolute form", () => {
  assert.equal(parseTarget("http://user:pw@Example.com:8080/x?y"), {
    path: "/x",
    url: { scheme: "http", host: "Example.com", port: 8080, path: "/x", query: "y" },
  });
  assert.equal(parseTarget("https://h").url, { scheme: "https", host: "h", path: "/" });
  assert.equal(parseTarget("http://h?q").url, { scheme: "http", host: "h", path: "/", query: "q" });
});

t("parseTarget: .. above the root", () => {
  for (const bad of ["/..", "/../x", "/a/../..", "/a/%2e%2e/%2E%2E/b", "/./../x"]) assert.is(parseTarget(bad).path, undefined, bad);
  for (const ok of ["/a/..", "/a/../b", "/a/./../b", "/...", "/..a"]) assert.type(parseTarget(ok).path, "string", ok);
});

t("percentDecode", () => {
  assert.is(percentDecode("/caf%C3%A9"), "/café");
  assert.is(percentDecode("%ff%FE"), "\u00ff\u00fe");
  assert.is(percentDecode("%"), "%");
  assert.is(percentDecode("%4"), "%4");
  assert.is(percentDecode("%g0%41"), "%g0A");
  assert.is(percentDecode("+"), "+");
  assert.is(percentDecode("ü%20"), "ü ");
});

t("headerMap: lower-case, '-' → '_', duplicates joined with ','", () => {
  const h = headerMap(["Content-Type", "text/plain", "Authorization", "a", "authorization", "b", "__proto__", "x", "X-Forwarded-For", "1.2.3.4"]);
  assert.is(h.content_type, "text/plain");
  assert.is(h.authorization, "a,b");
  assert.is(h.x_forwarded_for, "1.2.3.4");
  assert.is(h["__proto__"], "x");
  assert.is(Object.getPrototypeOf(h), null);
  const utf8 = headerMap(["X-Name", Buffer.from("Zoë", "utf8").toString("latin1"), "X-Latin", "caf\xe9"]);
  assert.is(utf8.x_name, "Zoë", "UTF-8 bytes decoded");
  assert.is(utf8.x_latin, "caf\xe9", "invalid UTF-8 kept byte-wise");
});

t("hostKey", () => {
  assert.is(hostKey("example.com:5280", { path: "/" }), "example.com");
  assert.is(hostKey("[::1]:5280", { path: "/" }), "[::1]");
  assert.is(hostKey("[::1]", { path: "/" }), "[::1]");
  assert.is(hostKey("Example.COM", { path: "/" }), "Example.COM");
  assert.is(hostKey(undefined, { path: "/" }), undefined);
  assert.is(hostKey("", { path: "/" }), undefined);
  assert.is(hostKey("a b", { path: "/" }), undefined);
  assert.is(hostKey("header.example", { path: "/", host: "target.example" }), "target.example");
});

t("clientInfo: X-Forwarded-* only from trusted proxies", () => {
  const trusted = new Set(["127.0.0.1", "::1", "10.0.0.1"]);
  assert.equal(clientInfo("203.0.113.9", { x_forwarded_for: "1.1.1.1", x_forwarded_proto: "https" }, trusted), {
    ip: "203.0.113.9",
    secure: false,
  });
  assert.equal(clientInfo("127.0.0.1", { x_forwarded_for: "1.1.1.1, 2.2.2.2, 10.0.0.1", x_forwarded_proto: "https" }, trusted), {
    ip: "2.2.2.2",
    secure: true,
  });
  assert.equal(clientInfo("::1", { x_forwarded_for: "10.0.0.1" }, trusted), { ip: "10.0.0.1", secure: false });
  assert.equal(clientInfo("::1", {}, trusted), { ip: "::1", secure: false });
});

t("request.ip and request.secure behind a proxy (end to end)", async () => {
  for (const [trustedProxies, expected] of [
    [undefined, { ip: "198.51.100.7", secure: true }],
    [[], { ip: "127.0.0.1", secure: false }],
  ] as const) {
    const { server, base } = await startServer({ trustedProxies: trustedProxies as string[] | undefined });
    try {
      server.addRoute({ host: null, method: "GET", path: "/ip", handler: (e) => JSON.stringify({ ip: e.request.ip, secure: e.request.secure }) });
      const res = await fetch(base + "/ip", { headers: { "x-forwarded-for": "198.51.100.7", "x-forwarded-proto": "https" } });
      assert.equal(JSON.parse(await res.text()), expected);
    } finally {
      await server.close();
    }
  }
});

t("titleCaseHeader", () => {
  assert.is(titleCaseHeader("content_type"), "Content-Type");
  assert.is(titleCaseHeader("access_control_allow_origin"), "Access-Control-Allow-Origin");
  assert.is(titleCaseHeader("CONTENT-LENGTH"), "Content-Length");
  assert.is(titleCaseHeader("etag"), "Etag");
  assert.is(titleCaseHeader("x_2fa"), "X-2fa");
});

t("NameMemo: keeps short names up to its bound, converts every name (long made-up names are not kept)", () => {
  let calls = 0;
  const memo = new NameMemo((s) => (calls++, s.toLowerCase()), 3, 8);
  assert.is(memo.get("Host"), "host");
  assert.is(memo.get("Host"), "host");
  assert.is(calls, 1, "a short name is converted once");
  const long = "X-" + "A".repeat(100);
  assert.is(memo.get(long), long.toLowerCase());
  assert.is(memo.get(long), long.toLowerCase());
  assert.is(calls, 3, "a long name is converted each time");
  assert.is(memo.size, 1, "and not kept");
  for (const name of ["A", "B", "C", "D"]) memo.get(name);
  assert.is(memo.size, 3, "at most maxEntries names are kept");
  assert.is(memo.get("D"), "d", "a name over the bound is still converted");
});

t("RouteTable ordering and removal", () => {
  const table = new RouteTable();
  const h = (name: string) => () => name;
  table.add("GET h/a/*", h("wild a"));
  table.add("GET h/a/b/*", h("wild a/b"));
  const rmExact = table.add("GET h/a/b/c", h("exact"));
  table.add("GET h/a/b/c", h("exact prio"), 10);
  table.add("GET h/a/b/c", h("exact low"), -1);
  table.add("GET h/a/b/*", h("wild a/b prio"), 3);
  table.add("POST h/a/*", h("other method"));
  table.add("GET other/a/*", h("other host"));
  const names = (key: string) => table.match(key).map((m) => `${(m.handler as () => string)()}${m.rest !== undefined ? `:${m.rest}` : ""}`);
  assert.equal(names("GET h/a/b/c"), ["exact prio", "exact", "exact low", "wild a/b prio:c", "wild a/b:c", "wild a:b/c"]);
  assert.equal(names("GET h/a/"), ["wild a:"]);
  assert.equal(names("GET h/a"), []);
  rmExact();
  rmExact();
  assert.equal(names("GET h/a/b/c").slice(0, 2), ["exact prio", "exact low"]);
  assert.is(table.size, 7);
});

t("xmlEscape and error pages", () => {
  assert.is(xmlEscape(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;");
  const html = renderErrorPage(404, "Not Found", "Gone <away>", "Unknown host: <x>");
  assert.ok(html.includes("<title>404 Not Found</title>"));
  assert.ok(html.includes("<h1>404 Not Found</h1>"));
  assert.ok(html.includes("Gone &lt;away&gt;"));
  assert.ok(html.includes("Unknown host: &lt;x&gt;"));
  assert.not.ok(renderErrorPage(404, "Not Found", "m").includes('class="detail"'));
});

t("errorMessage per status, random variants, overrides", () => {
  assert.is(errorMessage(400), "What kind of request do you call that??");
  assert.is(errorMessage(403), "You're not allowed to do that.");
  assert.is(errorMessage(405), "That's all I know.");
  assert.is(errorMessage(405, { defaultMessage: "Nope." }), "Nope.");
  assert.is(errorMessage(403, { messages: { 403: "Custom." } }), "Custom.");
  const seen404 = new Set<string>();
  const seen500 = new Set<string>();
  for (let i = 0; i < 200; i++) {
    seen404.add(errorMessage(404));
    seen500.add(errorMessage(500));
  }
  assert.equal([...seen404].sort(), [
    "Whatever you were looking for is not here. It's behind you.",
    "Whatever you were looking for is not here. Keep looking.",
    "Whatever you were looking for is not here. Where did you put it?",
  ]);
  assert.equal([...seen500].sort(), [
    "Don't look at me. Check your error log for more info.",
    "Gremlins. Check your error log for more info.",
    "It broke. Check your error log for more info.",
  ]);
});

t("reasonPhrase", () => {
  assert.is(reasonPhrase(201), "Created");
  assert.is(reasonPhrase(303), "See Other");
  assert.is(reasonPhrase(418), "I'm a teapot");
  assert.is(reasonPhrase(431), "Request Header Fields Too Large");
  assert.is(reasonPhrase(299), "Unassigned");
});

t.run();
