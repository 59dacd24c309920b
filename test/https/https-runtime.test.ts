/**
 * The https service on an in-process runtime: `request.secure`, module.httpUrl() building https
 * URLs, and certificates found again on the global event `config-reloaded` (fired here directly,
 * as the SIGHUP handler fires it): new connections get the new certificate.
 */
import { X509Certificate } from "node:crypto";
import { request } from "node:https";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { connect } from "node:tls";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Runtime } from "../../src/core/runtime.js";
import { createRuntime } from "../../src/create-runtime.js";
import { makeCert, opensslMissing } from "../helpers/certs.js";
import { makeConfig } from "../helpers/config.js";
import { captureLogs } from "../helpers/logs.js";
import { pluginDir } from "../helpers/plugins.js";
import { skip } from "../helpers/skip.js";
import { raw } from "../http/_helpers.js";

const PLUGINS = pluginDir({
  secureapp: `
    export default async function (module) {
      await module.depends("http");
      module.exports.url = () => module.httpUrl();
      module.provides("http", { route: { "GET": (event) => String(event.request.secure) } });
    }`,
});

const missing = opensslMissing();


interface Ctx {
  rt?: Runtime;
  dir: string;
  config: ReturnType<typeof makeConfig>;
  httpsPort: number;
  httpPort: number;
}

/** The SHA-256 fingerprint of the certificate presented for `servername`. */
function fingerprint(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
      const fp = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fp);
    });
    socket.on("error", reject);
  });
}

function httpsBody(port: number, servername: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, servername, rejectUnauthorized: false, headers: { host: servername }, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d) => (body += d));
      res.on("end", () => resolve(body));
    });
    req.on("error", reject);
    req.end();
  });
}

const s = suite<Ctx>("https runtime", {} as Ctx);

function httpsStatus(port: number, servername: string, method: string, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, servername, rejectUnauthorized: false, headers: { host: servername, "content-length": String(body.length) }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const fp = (pem: string) => new X509Certificate(pem).fingerprint256;

s.before.each(async (ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "https-rt-"));
  ctx.config = makeConfig(
    {
      plugin_paths: [PLUGINS],
      storage: "memory",
      certificates: join(ctx.dir, "certs"),
      http_ports: [0],
      http_interfaces: ["127.0.0.1"],
      https_ports: [0],
      https_interfaces: ["127.0.0.1"],
      modules_enabled: ["http", "secureapp"],
    },
    { "example.com": {}, "other.org": {} },
  );
});

s.after.each(async (ctx) => {
  await ctx.rt?.stop();
  ctx.rt = undefined;
});

async function start(ctx: Ctx): Promise<void> {
  ctx.rt = createRuntime({ config: ctx.config, processType: "server" });
  await ctx.rt.start();
  const state = ctx.rt.shared("/*/http/server") as { listening: Array<{ port: number }>; secure: Array<{ port: number }> };
  ctx.httpPort = state.listening[0]!.port;
  ctx.httpsPort = state.secure[0]?.port ?? 0;
}

s("request.secure is true over https only; httpUrl() is the https URL", async (ctx) => {
  if (missing) return skip(ctx, missing);
  makeCert(join(ctx.dir, "certs", "example.com.crt"), join(ctx.dir, "certs", "example.com.key"), { cn: "example.com" });
  await start(ctx);
  assert.ok(ctx.httpsPort > 0);
  assert.is(await httpsBody(ctx.httpsPort, "example.com", "/secureapp"), "true");
  const plain = await raw(ctx.httpPort, "GET /secureapp HTTP/1.1\r\nHost: example.com\r\n\r\n");
  assert.is(plain.responses[0]?.body.toString(), "false");
  const app = ctx.rt!.modules.get("example.com", "secureapp")!.exports as { url(): string };
  assert.is(app.url(), `https://example.com:${ctx.httpsPort}/secureapp`);
  // The same limits as http: a GET route takes no body, refused from the head.
  const refused = await httpsStatus(ctx.httpsPort, "example.com", "GET", "/secureapp", "0123456789");
  assert.is(refused, 413);
});

s("httpUrl() leaves out the https default port 443", async (ctx) => {
  if (missing) return skip(ctx, missing);
  if (process.getuid?.() !== 0) return skip(ctx, "binding port 443 needs root");
  const free = await new Promise<boolean>((resolve) => {
    const probe = createServer().once("error", () => resolve(false));
    probe.listen(443, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
  if (!free) return skip(ctx, "port 443 on 127.0.0.1 is in use");
  ctx.config.sections.get("*")!.options.https_ports = [443];
  makeCert(join(ctx.dir, "certs", "example.com.crt"), join(ctx.dir, "certs", "example.com.key"), { cn: "example.com" });
  await start(ctx);
  const app = ctx.rt!.modules.get("example.com", "secureapp")!.exports as { url(): string };
  assert.is(app.url(), "https://example.com/secureapp");
});

s("interfaces: https_interfaces, else interfaces, else every address (use_ipv6 = false: IPv4 only)", async (ctx) => {
  if (missing) return skip(ctx, missing);
  makeCert(join(ctx.dir, "certs", "example.com.crt"), join(ctx.dir, "certs", "example.com.key"), { cn: "example.com" });
  const options = ctx.config.sections.get("*")!.options;
  delete options.https_interfaces;
  options.interfaces = ["127.0.0.1"];
  await start(ctx);
  const state = () => ctx.rt!.shared("/*/http/server") as { secure: Array<{ address: string }> };
  assert.equal(state().secure.map((l) => l.address), ["127.0.0.1"]);
  await ctx.rt!.stop();
  delete options.interfaces;
  options.use_ipv6 = false;
  await start(ctx);
  assert.equal(state().secure.map((l) => l.address), ["0.0.0.0"]);
});

s("config-reloaded: new connections get the replaced certificates (port and SNI host)", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const certs = join(ctx.dir, "certs");
  const first = makeCert(join(certs, "example.com.crt"), join(certs, "example.com.key"), { cn: "example.com" });
  const otherFirst = makeCert(join(certs, "other.org.crt"), join(certs, "other.org.key"), { cn: "other.org" });
  await start(ctx);
  assert.is(await fingerprint(ctx.httpsPort, "example.com"), fp(first));
  assert.is(await fingerprint(ctx.httpsPort, "other.org"), fp(otherFirst));

  const second = makeCert(join(certs, "example.com.crt"), join(certs, "example.com.key"), { cn: "example.com" });
  const otherSecond = makeCert(join(certs, "other.org.crt"), join(certs, "other.org.key"), { cn: "other.org" });
  // Files replaced, no reload yet: still the certificates read at start.
  assert.is(await fingerprint(ctx.httpsPort, "example.com"), fp(first));
  ctx.rt!.globalEvents.fire("config-reloaded", { config: ctx.config });
  assert.is(await fingerprint(ctx.httpsPort, "example.com"), fp(second));
  assert.is(await fingerprint(ctx.httpsPort, "other.org"), fp(otherSecond));
  assert.not.equal(fp(first), fp(second));
});

s("config-reloaded starts https when a certificate has appeared since the start", async (ctx) => {
  if (missing) return skip(ctx, missing);
  await start(ctx);
  assert.is(ctx.httpsPort, 0, "no certificate at start: https not started");
  const pem = makeCert(join(ctx.dir, "certs", "example.com.crt"), join(ctx.dir, "certs", "example.com.key"), { cn: "example.com" });
  ctx.rt!.globalEvents.fire("config-reloaded", { config: ctx.config });
  const state = ctx.rt!.shared("/*/http/server") as { secure: Array<{ port: number }> };
  for (let i = 0; i < 200 && !state.secure[0]; i++) await new Promise((r) => setTimeout(r, 10));
  const port = state.secure[0]!.port;
  assert.is(await fingerprint(port, "example.com"), fp(pem));
  assert.is(await httpsBody(port, "example.com", "/secureapp"), "true");
  const app = ctx.rt!.modules.get("example.com", "secureapp")!.exports as { url(): string };
  assert.is(app.url(), `https://example.com:${port}/secureapp`);
});

s("config-reloaded with an unusable certificate keeps serving the old one and says why", async (ctx) => {
  if (missing) return skip(ctx, missing);
  ctx.config.sections.get("*")!.options.https_certificate = join(ctx.dir, "site.crt");
  const first = makeCert(join(ctx.dir, "site.crt"), join(ctx.dir, "site.key"), { cn: "example.com" });
  await start(ctx);
  assert.is(await fingerprint(ctx.httpsPort, "example.com"), fp(first));
  writeFileSync(join(ctx.dir, "site.key"), "garbage\n");
  const logs = captureLogs();
  try {
    ctx.rt!.globalEvents.fire("config-reloaded", { config: ctx.config });
  } finally {
    logs.restore();
  }
  assert.ok(
    logs.messages("error").includes(`Error reloading certificate for encrypted port for https: SSL/TLS: Failed to load '${join(ctx.dir, "site.key")}': Check that the file contains a private key (for https port ${ctx.httpsPort})`),
    logs.messages("error").join("\n"),
  );
  assert.is(await fingerprint(ctx.httpsPort, "example.com"), fp(first));
});

s.run();
