/**
 * HTTPS as a real process: `prosodyctl start` with certificates made by openssl in the test, the
 * invites API over TLS answering 201 with an https:// Location, SNI per virtual host, and no
 * certificate → one warning, http still served, nothing listening on the https port.
 */
import { request } from "node:https";
import { connect, type PeerCertificate } from "node:tls";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl } from "../helpers/cli.js";
import { makeCert, opensslMissing } from "../helpers/certs.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";
import { skip } from "../helpers/skip.js";

const missing = opensslMissing();

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTPS request to 127.0.0.1:port naming `servername` (SNI and Host), trusting only `ca`. */
function httpsGet(port: number, servername: string, path: string, ca: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, servername, ca, headers: { host: servername, ...headers }, agent: false },
      (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** The certificate the server presents for an SNI name (undefined: no SNI sent). */
function presented(port: number, servername?: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert);
    });
    socket.on("error", reject);
  });
}

const MODULES = `modules_enabled = { "http", "invites", "invites_api", "invites_page" }`;

test("the invites API over https answers 201 with an https:// Location", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const httpsPort = await freePort();
  let ca = "";
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess(
      `
storage = "internal"
https_ports = { ${httpsPort} }
https_interfaces = { "127.0.0.1" }
${MODULES}
VirtualHost "example.com"
`,
      { prepare: (dir) => (ca = makeCert(join(dir, "certs", "example.com.crt"), join(dir, "certs", "example.com.key"), { cn: "example.com", dns: ["example.com"] })) },
    );
    const key = (await prosodyctl(["--config", server.config, "mod_invites_api", "create", "example.com"], { cwd: server.dir })).stdout.trim();
    assert.match(key, /^\S+\/\S+$/);
    const answer = await httpsGet(httpsPort, "example.com", "/invites_api", ca, { authorization: `Bearer ${key}` });
    assert.is(answer.status, 201, answer.body);
    const location = String(answer.headers.location);
    assert.ok(location.startsWith(`https://example.com:${httpsPort}/invites_page?`), location);
    // The same API reached over plain http builds the same https URL (mod_http's rule).
    const plain = await rawRequest(server.port, `GET /invites_api HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`);
    assert.is(plain.status, 201);
    assert.ok(plain.header("location")?.startsWith(`https://example.com:${httpsPort}/invites_page?`), plain.header("location"));
  } finally {
    await server?.stop();
  }
});

test("SNI: each virtual host is served its own certificate", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const httpsPort = await freePort();
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess(
      `
certificates = "certs"
https_ports = { ${httpsPort} }
https_interfaces = { "127.0.0.1" }
modules_enabled = { "http" }
VirtualHost "example.com"
VirtualHost "other.org"
`,
      {
        prepare: (dir) => {
          makeCert(join(dir, "certs", "example.com.crt"), join(dir, "certs", "example.com.key"), { cn: "example.com", dns: ["example.com"] });
          makeCert(join(dir, "certs", "other.org", "fullchain.pem"), join(dir, "certs", "other.org", "privkey.pem"), { cn: "other.org" });
        },
      },
    );
    assert.is((await presented(httpsPort, "other.org")).subject.CN, "other.org");
    assert.is((await presented(httpsPort, "example.com")).subject.CN, "example.com");
    assert.is((await presented(httpsPort, "OTHER.org")).subject.CN, "other.org", "SNI names are case-insensitive");
  } finally {
    await server?.stop();
  }
});

test("no certificate: one warning, https not listening, http still served", async () => {
  const httpsPort = await freePort();
  const server = await startServerProcess(`
https_ports = { ${httpsPort} }
https_interfaces = { "127.0.0.1" }
modules_enabled = { "http" }
VirtualHost "example.com"
`);
  try {
    const plain = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    assert.is(plain.status, 200);
    const warnings = server.output().split("\n").filter((l) => /HTTPS not started/.test(l));
    assert.is(warnings.length, 1, server.output());
    assert.match(warnings[0]!, new RegExp(`no certificate found for https port ${httpsPort} or any host \\(looked in ${server.dir}/certs`));
    assert.not.ok(await connects(httpsPort), "nothing listens on the https port");
  } finally {
    await server.stop();
  }
});

test("a key that is not a key: https not started with Prosody's message, http still served", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const httpsPort = await freePort();
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess(
      `
https_ports = { ${httpsPort} }
https_interfaces = { "127.0.0.1" }
https_certificate = "tls/site.crt"
modules_enabled = { "http" }
VirtualHost "example.com"
`,
      {
        prepare: (dir) => {
          makeCert(join(dir, "tls", "site.crt"), join(dir, "tls", "site.key"), { cn: "example.com" });
          writeFileSync(join(dir, "tls", "site.key"), "not a key\n");
        },
      },
    );
    const line = server.output().split("\n").find((l) => /HTTPS not started/.test(l)) ?? "";
    assert.match(line, `SSL/TLS: Failed to load '${server.dir}/tls/site.key': Check that the file contains a private key (for https port ${httpsPort})`);
    assert.not.ok(await connects(httpsPort));
    const plain = await rawRequest(server.port, "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    assert.is(plain.status, 200);
  } finally {
    await server?.stop();
  }
});

test("a key the server's user cannot read: https not started with Prosody's message", async (ctx) => {
  if (missing) return skip(ctx, missing);
  if (process.getuid?.() !== 0) return skip(ctx, "needs root (the server switches to the prosody user)");
  if (spawnSync("id", ["-u", "prosody"]).status !== 0) return skip(ctx, "no prosody user");
  const httpsPort = await freePort();
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess(
      `
run_as_root = false
https_ports = { ${httpsPort} }
https_interfaces = { "127.0.0.1" }
modules_enabled = { "http" }
VirtualHost "example.com"
`,
      {
        prepare: (dir) => {
          makeCert(join(dir, "certs", "example.com.crt"), join(dir, "certs", "example.com.key"), { cn: "example.com" });
          execFileSync("chown", ["-R", "prosody:prosody", dir]);
          // The key stays root's, mode 0600: the server, running as prosody, cannot read it.
          execFileSync("chown", ["root:root", join(dir, "certs", "example.com.key")]);
          chmodSync(join(dir, "certs", "example.com.key"), 0o600);
        },
      },
    );
    const line = server.output().split("\n").find((l) => /HTTPS not started/.test(l)) ?? server.output();
    assert.match(line, `SSL/TLS: Failed to load '${server.dir}/certs/example.com.key': Check that the permissions allow Prosody to read this file. (for https port ${httpsPort})`);
    assert.not.ok(await connects(httpsPort));
  } finally {
    await server?.stop();
  }
});

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
    socket.on("secureConnect", () => (socket.end(), resolve(true)));
    socket.on("error", () => resolve(false));
  });
}

test.run();
