/** mod_http on the module runtime: app registration, CORS, redirects, hosts, httpUrl (spec §3). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import type { Runtime } from "../../src/core/runtime.js";
import { createRuntime } from "../../src/create-runtime.js";
import { findStartupError, StartupError } from "../../src/core/startup-error.js";
import { freePort } from "../helpers/http.js";
import { makeConfig } from "../helpers/config.js";
import { captureLogs } from "../helpers/logs.js";
import { pluginDir } from "../helpers/plugins.js";
import { headerNames, raw, titleOf } from "./_helpers.js";

const PLUGINS = pluginDir({
  hello: `
    export default async function (module) {
      await module.depends("http");
      module.exports.url = () => module.httpUrl();
      module.provides("http", {
        route: {
          "GET": () => "hello base",
          "GET /files/*": (event, rest) => "file:" + rest,
          "post /form": (event) => "posted " + event.request.body,
          "GET /static": "static value",
          "GET /forbidden": () => 403,
          "GET /dir/": () => "dir index",
          "GET /headers": (event) => ({ headers: { x_app: "1" }, body: JSON.stringify(event.request.headers) }),
          "/bad": () => "never",
        },
      });
      module.provides("http", { name: "noroute" });
    }`,
  http_api: `
    export default async function (module) {
      await module.depends("http");
      module.exports.url = (app, path) => module.httpUrl(app, path);
      module.provides("http", {
        default_path: "/custom/$host/",
        route: { "GET": () => ({ statusCode: 201, headers: { location: "xmpp:x" } }) },
      });
    }`,
  quiet: `
    export default async function (module) {
      await module.depends("http");
      module.provides("http", { cors: { enabled: false }, route: { "GET": () => "no cors" } });
      module.provides("http", {
        name: "picky",
        cors: { credentials: true, headers: { Authorization: true, "Content-Type": false }, origins: ["https://ok.example"] },
        route: { "GET": () => "picky" },
      });
      module.provides("http", { name: "overridden", route: { "GET": () => "overridden" } });
    }`,
  renamed: `
    export default async function (module) {
      await module.depends("http");
      module.exports.url = () => module.httpUrl();
      module.provides("http", { route: { "GET": () => "renamed app" } });
    }`,
  rootapp: `
    export default async function (module) {
      await module.depends("http");
      module.provides("http", { default_path: "/", route: { "GET /*": (e, rest) => "root:" + rest } });
    }`,
  early: `
    export default function (module) {
      module.provides("http", { route: { "GET": () => "provided before http was loaded" } });
    }`,
  globalapp: `
    export default async function (module) {
      module.setGlobal();
      await module.depends("http");
      module.exports.url = () => module.httpUrl("globalapp");
      module.provides("http", { route: { "GET": (event) => "global " + (event.request.headers.host ?? "no host") } });
    }`,
});

interface Ctx {
  rt: Runtime;
  port: number;
  logs: ReturnType<typeof captureLogs>;
}

const t = suite<Ctx>("mod_http");

t.before(async (ctx) => {
  ctx.logs = captureLogs();
  ctx.rt = createRuntime({
    config: makeConfig(
      {
        plugin_paths: [PLUGINS],
        storage: "memory",
        http_ports: [0],
        http_interfaces: ["127.0.0.1"],
        http_paths: { renamed: "/global-renamed" },
        http_cors_override: { overridden: { enabled: false } },
      },
      {
        "a.example": {},
        "b.example": { http_host: "web.b.example", http_paths: { renamed: "/host-renamed/" } },
        "c.example": { http_external_url: "https://chat.example.net/xmpp" },
        "d.example": {},
      },
    ),
    processType: "server",
  });
  await ctx.rt.modules.load("a.example", "hello");
  await ctx.rt.modules.load("a.example", "http_api");
  await ctx.rt.modules.load("a.example", "quiet");
  await ctx.rt.modules.load("b.example", "renamed");
  await ctx.rt.modules.load("c.example", "renamed");
  const state = ctx.rt.shared("/*/http/server") as { listening: Array<{ port: number }> };
  ctx.port = state.listening[0]!.port;
});

t.after(async (ctx) => {
  await ctx.rt.stop();
  ctx.logs.restore();
});

function get(ctx: Ctx, path: string, host = "a.example", extra = "", method = "GET") {
  return raw(ctx.port, `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`, { head: method === "HEAD" }).then(
    (ex) => ex.responses[0]!,
  );
}

t("listens on the configured port and serves an app at /<name>", async (ctx) => {
  const res = await get(ctx, "/hello");
  assert.is(res.statusCode, 200);
  assert.is(res.text, "hello base");
});

t("CORS headers on matched routes: methods = route methods + GET, OPTIONS", async (ctx) => {
  const res = await get(ctx, "/hello");
  assert.is(res.headers["access-control-allow-methods"], "POST, GET, OPTIONS");
  assert.is(res.headers["access-control-allow-headers"], "Content-Type");
  assert.is(res.headers["access-control-max-age"], "7200");
  assert.is(res.headers["access-control-allow-origin"], "*");
  assert.is(res.headers["access-control-allow-credentials"], undefined);
  const api = await get(ctx, "/custom/a.example");
  assert.is(api.headers["access-control-allow-methods"], "GET, OPTIONS");
  const echoed = await get(ctx, "/hello", "a.example", "Origin: https://app.example.net\r\n");
  assert.is(echoed.headers["access-control-allow-origin"], "https://app.example.net");
});

t("golden 201 and 403 header sets from an app", async (ctx) => {
  const created = await get(ctx, "/custom/a.example");
  assert.is(created.statusLine, "HTTP/1.1 201 Created");
  assert.equal(headerNames(created), [
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Origin",
    "Access-Control-Max-Age",
    "Connection",
    "Content-Length",
    "Date",
    "Location",
  ]);
  const forbidden = await get(ctx, "/hello/forbidden");
  assert.is(forbidden.statusLine, "HTTP/1.1 403 Forbidden");
  assert.equal(headerNames(forbidden), [
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Origin",
    "Access-Control-Max-Age",
    "Connection",
    "Content-Length",
    "Content-Type",
    "Date",
  ]);
});

t("automatic OPTIONS: 200, empty, CORS headers, no Content-Type", async (ctx) => {
  for (const path of ["/hello", "/hello/form", "/hello/files/x"]) {
    const res = await get(ctx, path, "a.example", "Origin: https://app.example.net\r\n", "OPTIONS");
    assert.is(res.statusLine, "HTTP/1.1 200 OK", path);
    assert.is(res.headers["content-length"], "0");
    assert.is(res.headers["content-type"], undefined);
    assert.is(res.headers["access-control-allow-origin"], "https://app.example.net");
    assert.is(res.headers["access-control-allow-methods"], "POST, GET, OPTIONS");
  }
  const none = await get(ctx, "/hello/nothing", "a.example", "", "OPTIONS");
  assert.is(none.statusCode, 404);
});

t("unknown paths and methods: plain 404 without CORS", async (ctx) => {
  for (const [method, path] of [
    ["GET", "/hello/nope"],
    ["POST", "/hello"],
    ["GET", "/hello/"],
    ["GET", "/Hello"],
  ] as const) {
    const res = await get(ctx, path, "a.example", "", method);
    assert.is(res.statusCode, 404, `${method} ${path}`);
    assert.equal(headerNames(res), ["Connection", "Content-Length", "Content-Type", "Date"]);
  }
});

t("route keys: lower-case methods, sub-paths, static values", async (ctx) => {
  const posted = await raw(ctx.port, "POST /hello/form HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\n\r\na=b");
  assert.is(posted.responses[0]!.text, "posted a=b");
  assert.is((await get(ctx, "/hello/static")).text, "static value");
  const headers = JSON.parse((await get(ctx, "/hello/headers", "a.example", "X-Forwarded-For: 1.2.3.4\r\n")).text);
  assert.is(headers.x_forwarded_for, "1.2.3.4");
});

t("wildcard routes get the rest; the bare path redirects with 301 (query kept, no CORS)", async (ctx) => {
  assert.is((await get(ctx, "/hello/files/a/b.txt")).text, "file:a/b.txt");
  let res = await get(ctx, "/hello/files");
  assert.is(res.statusLine, "HTTP/1.1 301 Moved Permanently");
  assert.is(res.headers["location"], "/hello/files/");
  assert.equal(headerNames(res), ["Connection", "Content-Length", "Date", "Location"]);
  res = await get(ctx, "/hello/files?x=1&y=2");
  assert.is(res.headers["location"], "/hello/files/?x=1&y=2");
  res = await get(ctx, "/hello/dir");
  assert.is(res.headers["location"], "/hello/dir/");
  assert.is((await get(ctx, "/hello/dir/")).text, "dir index");
});

t("HEAD uses the GET route", async (ctx) => {
  const res = await get(ctx, "/hello", "a.example", "", "HEAD");
  assert.is(res.statusCode, 200);
  assert.is(res.headers["content-length"], "10");
  assert.is(res.headers["access-control-allow-origin"], "*");
});

t("default_path with $host, name from the module (http_ prefix stripped)", async (ctx) => {
  const res = await get(ctx, "/custom/a.example");
  assert.is(res.statusCode, 201);
  assert.is(res.headers["location"], "xmpp:x");
});

t("cors disabled per app, per-app credentials/headers/origins, http_cors_override", async (ctx) => {
  let res = await get(ctx, "/quiet");
  assert.is(res.text, "no cors");
  assert.is(res.headers["access-control-allow-origin"], undefined);
  assert.is((await get(ctx, "/quiet", "a.example", "", "OPTIONS")).statusCode, 404);

  res = await get(ctx, "/picky", "a.example", "Origin: https://ok.example\r\n");
  assert.is(res.headers["access-control-allow-origin"], "https://ok.example");
  assert.is(res.headers["access-control-allow-credentials"], "true");
  assert.is(res.headers["access-control-allow-headers"], "Authorization");
  res = await get(ctx, "/picky", "a.example", "Origin: https://evil.example\r\n");
  assert.is(res.headers["access-control-allow-origin"], undefined);

  res = await get(ctx, "/overridden");
  assert.is(res.text, "overridden");
  assert.is(res.headers["access-control-allow-methods"], undefined);
});

t("http_paths: host value, then global value", async (ctx) => {
  assert.is((await get(ctx, "/host-renamed", "web.b.example")).text, "renamed app");
  assert.is((await get(ctx, "/global-renamed", "c.example")).text, "renamed app");
});

t("http_host is the host key; the XMPP host name then is unknown", async (ctx) => {
  const res = await get(ctx, "/host-renamed", "b.example");
  assert.is(res.statusCode, 404);
  assert.ok(res.text.includes("Unknown host: b.example"));
  const root = await get(ctx, "/", "web.b.example");
  assert.is(root.statusCode, 200);
  assert.is(titleOf(root.text), "Prosody is running!");
  assert.is((await get(ctx, "/hello", "web.b.example")).statusCode, 404, "apps are per host");
});

t("registration errors and the 'Serving' log line", async (ctx) => {
  const errors = ctx.logs.messages("error");
  assert.ok(errors.some((m) => m.includes(`Invalid route in hello, "/bad". See https://prosody.im/doc/developers/http#routes`)));
  assert.ok(errors.includes(`HTTP app "noroute" provides no 'route', add one to handle HTTP requests`));
  const info = ctx.logs.messages("info");
  assert.ok(info.includes(`Serving 'hello' at http://a.example:${ctx.port}/hello`), info.join("\n"));
  assert.ok(info.includes(`Serving 'api' at http://a.example:${ctx.port}/custom/a.example`));
});

t("module.httpUrl()", async (ctx) => {
  const hello = ctx.rt.modules.get("a.example", "hello")!;
  assert.is(hello.exports.url(), `http://a.example:${ctx.port}/hello`);
  const api = ctx.rt.modules.get("a.example", "http_api")!;
  assert.is(api.exports.url(), `http://a.example:${ctx.port}/api`, "default_path is only known when passed");
  assert.is(api.exports.url(undefined, "/custom/$host"), `http://a.example:${ctx.port}/custom/a.example`);
  assert.is(api.exports.url("other", "/x/y/"), `http://a.example:${ctx.port}/x/y`);
  assert.is(ctx.rt.modules.get("b.example", "renamed")!.exports.url(), `http://web.b.example:${ctx.port}/host-renamed`);
  assert.is(ctx.rt.modules.get("c.example", "renamed")!.exports.url(), "https://chat.example.net/xmpp/global-renamed");
});

t("a global app is served without a host part, even without Host", async (ctx) => {
  const g = await ctx.rt.modules.load("*", "globalapp");
  const res = await raw(ctx.port, "GET /globalapp HTTP/1.0\r\n\r\n", { waitClose: true });
  assert.is(res.responses[0]!.text, "global no host");
  assert.is((await get(ctx, "/globalapp", "whatever.example")).text, "global whatever.example");
  assert.is(g.exports.url(), `http://127.0.0.1:${ctx.port}/globalapp`);
  await ctx.rt.modules.unload("*", "globalapp");
  assert.is((await get(ctx, "/globalapp", "a.example")).statusCode, 404);
});

t("root app ('/' base): wildcard catches everything on its host", async (ctx) => {
  await ctx.rt.modules.load("c.example", "rootapp");
  assert.is((await get(ctx, "/any/thing", "c.example")).text, "root:any/thing");
  assert.is((await get(ctx, "/global-renamed", "c.example")).text, "renamed app", "exact routes still win");
  await ctx.rt.modules.unload("c.example", "rootapp");
  assert.is((await get(ctx, "/any/thing", "c.example")).statusCode, 404);
});

t("apps provided before http is loaded on the host are picked up when it is", async (ctx) => {
  await ctx.rt.modules.load("d.example", "early");
  const before = await get(ctx, "/early", "d.example");
  assert.is(before.statusCode, 404);
  assert.ok(before.text.includes("Unknown host: d.example"), "provides() alone does nothing");
  await ctx.rt.modules.load("d.example", "http");
  assert.is((await get(ctx, "/early", "d.example")).text, "provided before http was loaded");
});

t("unloading an app module removes its routes", async (ctx) => {
  await ctx.rt.modules.unload("a.example", "quiet");
  assert.is((await get(ctx, "/quiet")).statusCode, 404);
  assert.is((await get(ctx, "/hello")).text, "hello base");
});

t("unloading http from a host removes the host key and its routes", async (ctx) => {
  await ctx.rt.modules.unload("c.example", "http");
  const res = await get(ctx, "/global-renamed", "c.example");
  assert.is(res.statusCode, 404);
  assert.ok(res.text.includes("Unknown host: c.example"));
  assert.is((await get(ctx, "/hello")).text, "hello base");
});

t("server stop closes the listener", async (ctx) => {
  await ctx.rt.stop();
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(ctx.port, "127.0.0.1");
    s.on("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.on("error", () => resolve(true));
  });
  assert.ok(refused);
});

t("prosodyctl: no listener, httpUrl gives http://disabled.invalid/", async () => {
  const rt = createRuntime({
    config: makeConfig({ plugin_paths: [PLUGINS], http_ports: [0] }, { "a.example": {} }),
    processType: "prosodyctl",
  });
  try {
    const g = await rt.modules.load("*", "globalapp");
    assert.is(g.exports.url(), "http://disabled.invalid/");
    const state = rt.shared("/*/http/server") as { listening: unknown[] };
    assert.equal(state.listening, []);
  } finally {
    await rt.stop();
  }
});

// Issue 13 changed this: an address that cannot be bound was logged and skipped; now it stops the
// start (a StartupError naming the address and options), and what was bound before is released.
t("an unavailable interface stops the load with a StartupError naming it; the other interface is released", async () => {
  const port = await freePort();
  const rt = createRuntime({
    config: makeConfig(
      { plugin_paths: [PLUGINS], http_ports: [port], http_interfaces: ["127.0.0.1", "192.0.2.123"] },
      { "a.example": {} },
    ),
    processType: "server",
  });
  try {
    const err = await rt.modules.load("a.example", "hello").catch((e: unknown) => e);
    const fatal = findStartupError(err);
    assert.instance(fatal, StartupError);
    assert.is(fatal!.message, `Cannot listen on 192.0.2.123 port ${port} (http_ports, http_interfaces): address not available (EADDRNOTAVAIL): no interface of this machine has it`);
    const probe = net.createServer();
    await new Promise<void>((r, reject) => probe.once("error", reject).listen(port, "127.0.0.1", r));
    probe.close();
  } finally {
    await rt.stop();
  }
});

t.run();
