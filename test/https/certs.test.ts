/**
 * Certificate discovery as Prosody 0.12's certmanager: the index of the certificates directory
 * (names, wildcards, expired ones left out), <host>.crt/.key, <host>/fullchain.pem +
 * privkey.pem, <host>.pem, parent domains, the `certificate` option, https_certificate by port,
 * and how ssl / https_ssl tables are merged for the https port and for each host (SNI).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { findHostCert, findServiceCert, indexCerts } from "../../src/modules/certs.js";
import { contextProblem, HttpsTls } from "../../src/modules/tls-contexts.js";
import type { OptionValue } from "../../src/core/types.js";
import { makeCert, opensslMissing } from "../helpers/certs.js";
import { makeConfig } from "../helpers/config.js";
import { skip } from "../helpers/skip.js";

const missing = opensslMissing();
const s = suite("certificate discovery");

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "certs-"));
}

function lookup(dir: string, global: Record<string, OptionValue> = {}, hosts: Record<string, Record<string, OptionValue>> = {}) {
  const config = makeConfig({ certificates: "certs", ...global }, hosts);
  const index = indexCerts(join(dir, "certs"));
  return {
    config,
    index,
    host: (h: string) => findHostCert(config, dir, index, h),
    service: (port: number) => findServiceCert(config, dir, index, "https", port),
  };
}

s("the index: SAN names, wildcards and the CN; expired certificates and files without a key are left out", (ctx) => {
  if (missing) return skip(ctx, missing);
  const dir = tempDir();
  const c = join(dir, "certs");
  makeCert(join(c, "main.crt"), join(c, "main.key"), { cn: "Main.Example", dns: ["example.com", "*.example.com"] });
  makeCert(join(c, "le", "live", "fullchain.pem"), join(c, "le", "live", "privkey.pem"), { cn: "chat.example.net" });
  makeCert(join(c, "old.crt"), join(c, "old.key"), { cn: "old.example", days: -1 });
  makeCert(join(c, "nokey.crt"), join(dir, "elsewhere.key"), { cn: "nokey.example" });
  const index = indexCerts(c);
  assert.equal(index.get("example.com"), [join(c, "main.crt")]);
  assert.equal(index.get("*.example.com"), [join(c, "main.crt")]);
  assert.equal(index.get("main.example"), [join(c, "main.crt")]);
  assert.equal(index.get("chat.example.net"), [join(c, "le", "live", "fullchain.pem")]);
  assert.is(index.get("old.example"), undefined);
  assert.is(index.get("nokey.example"), undefined);
});

s("a host: index (exact, wildcard), then <host>.crt, <host>/fullchain.pem, <host>.pem, then the parent domain", (ctx) => {
  if (missing) return skip(ctx, missing);
  const dir = tempDir();
  const c = join(dir, "certs");
  makeCert(join(c, "wild.crt"), join(c, "wild.key"), { cn: "wild", dns: ["*.example.com"] });
  makeCert(join(c, "other.org", "fullchain.pem"), join(c, "other.org", "privkey.pem"), { cn: "unrelated.name" });
  makeCert(join(c, "third.net.pem"), join(dir, "unused.key"), { cn: "third.net" });
  // <host>.pem holds the key too: append it.
  writeFileSync(join(c, "third.net.pem"), readFileSync(join(c, "third.net.pem"), "utf8") + readFileSync(join(dir, "unused.key"), "utf8"));
  const l = lookup(dir);
  assert.equal(l.host("chat.example.com"), { certificate: join(c, "wild.crt"), key: join(c, "wild.key") });
  // other.org's certificate names something else: it is not in the index under other.org, but the file name finds it.
  assert.equal(l.host("other.org"), { certificate: join(c, "other.org", "fullchain.pem"), key: join(c, "other.org", "privkey.pem") });
  assert.equal(l.host("third.net"), { certificate: join(c, "third.net.pem"), key: join(c, "third.net.pem") });
  // Parent domains: conference.other.org has nothing of its own.
  assert.equal(l.host("conference.other.org"), l.host("other.org"));
  assert.is(l.host("nothing.invalid"), undefined);
});

s("the `certificate` option of a host: a file (key beside it) or a directory", (ctx) => {
  if (missing) return skip(ctx, missing);
  const dir = tempDir();
  makeCert(join(dir, "tls", "site.crt"), join(dir, "tls", "site.key"), { cn: "x" });
  makeCert(join(dir, "perhost", "b.example.crt"), join(dir, "perhost", "b.example.key"), { cn: "x" });
  mkdirSync(join(dir, "certs"));
  const l = lookup(dir, {}, { "a.example": { certificate: "tls/site.crt" }, "b.example": { certificate: join(dir, "perhost") } });
  assert.equal(l.host("a.example"), { certificate: join(dir, "tls", "site.crt"), key: join(dir, "tls", "site.key") });
  assert.equal(l.host("b.example"), { certificate: join(dir, "perhost", "b.example.crt"), key: join(dir, "perhost", "b.example.key") });
});

s("the https port: any indexed certificate, else https_certificate (by port, else default), else certs/https.crt", (ctx) => {
  if (missing) return skip(ctx, missing);
  const dir = tempDir();
  makeCert(join(dir, "p1.crt"), join(dir, "p1.key"), { cn: "x" });
  makeCert(join(dir, "dflt.crt"), join(dir, "dflt.key"), { cn: "x" });
  makeCert(join(dir, "certs", "https.pem"), join(dir, "certs", "https.key"), { cn: "https.invalid" });
  const byPort = lookup(dir, { https_certificate: { "5281": "p1.crt", default: "dflt.crt" } });
  assert.equal(byPort.service(5281), { certificate: join(dir, "p1.crt"), key: join(dir, "p1.key") });
  assert.equal(byPort.service(443), { certificate: join(dir, "dflt.crt"), key: join(dir, "dflt.key") });
  // Like Prosody, only the files' existence is looked at here (loading comes later).
  assert.equal(lookup(dir).service(5281), { certificate: join(dir, "certs", "https.pem"), key: join(dir, "certs", "https.pem") });
  makeCert(join(dir, "certs", "https.crt"), join(dir, "certs", "https.key"), { cn: "https.invalid" });
  const indexed = lookup(dir, { https_certificate: "p1.crt" });
  assert.equal(indexed.service(5281), { certificate: join(dir, "certs", "https.crt"), key: join(dir, "certs", "https.key") }, "the index comes first");
});

s("settings: ssl for the port; a host's own certificate, else the port's, and its https_ssl", (ctx) => {
  if (missing) return skip(ctx, missing);
  const dir = tempDir();
  makeCert(join(dir, "certs", "a.example.crt"), join(dir, "certs", "a.example.key"), { cn: "a.example" });
  makeCert(join(dir, "port.crt"), join(dir, "port.key"), { cn: "port" });
  makeCert(join(dir, "c.crt"), join(dir, "c.key"), { cn: "c" });
  const config = makeConfig(
    { certificates: "certs", ssl: { certificate: "port.crt", key: "port.key", ciphers: ["HIGH", "!aNULL"] } },
    { "a.example": {}, "b.example": {}, "c.example": { https_ssl: { certificate: "c.crt", key: "c.key" } }, "d.example": { http_host: "a.example" } },
  );
  const tls = new HttpsTls(config, dir, () => undefined);
  const port = tls.portSettings(5281);
  assert.equal(port, { certificate: join(dir, "port.crt"), key: join(dir, "port.key"), ciphers: "HIGH:!aNULL" });
  assert.is(tls.hostSettings("a.example", port).certificate, join(dir, "certs", "a.example.crt"));
  assert.is(tls.hostSettings("b.example", port).certificate, join(dir, "port.crt"), "no certificate of its own: the port's");
  assert.is(tls.hostSettings("c.example", port).certificate, join(dir, "c.crt"));
  assert.is(tls.hostSettings("d.example", port).certificate, join(dir, "certs", "a.example.crt"), "http_host's certificate");
  assert.is(tls.sniName("d.example"), "a.example");
});

s("settings: https_ssl wins over ssl, and a global https_ssl applies to every host (Prosody's inheritance)", (ctx) => {
  if (missing) return skip(ctx, missing);
  const dir = tempDir();
  makeCert(join(dir, "certs", "a.example.crt"), join(dir, "certs", "a.example.key"), { cn: "a.example" });
  makeCert(join(dir, "https.crt"), join(dir, "https.key"), { cn: "https" });
  const config = makeConfig(
    { certificates: "certs", ssl: { certificate: "ignored.crt", key: "ignored.key" }, https_ssl: { certificate: "https.crt", key: "https.key", ["5282"]: { key: "other.key" } } },
    { "a.example": {} },
  );
  const tls = new HttpsTls(config, dir, () => undefined);
  assert.equal(tls.portSettings(5281), { certificate: join(dir, "https.crt"), key: join(dir, "https.key") });
  assert.equal(tls.portSettings(5282), { certificate: join(dir, "https.crt"), key: join(dir, "other.key") }, "https_ssl[port]");
  assert.is(tls.hostSettings("a.example", tls.portSettings(5281)).certificate, join(dir, "https.crt"));
});

s("an encrypted key: used with the ssl password, else Prosody's message", (ctx) => {
  if (missing) return skip(ctx, missing);
  const dir = tempDir();
  makeCert(join(dir, "site.crt"), join(dir, "plain.key"), { cn: "example.com" });
  execFileSync("openssl", ["pkey", "-in", join(dir, "plain.key"), "-aes256", "-passout", "pass:s3cret", "-out", join(dir, "site.key")]);
  const settings = { certificate: join(dir, "site.crt"), key: join(dir, "site.key") };
  assert.is(contextProblem(settings, "https port 5281"), "Encrypted certificate for https port 5281 requires 'ssl' 'password' to be set in config");
  const built = contextProblem({ ...settings, password: "s3cret" }, "https port 5281");
  assert.type(built, "object");
  assert.is(contextProblem({ certificate: join(dir, "site.crt") }, "x.example"), "No key present in SSL/TLS configuration for x.example");
  assert.is(contextProblem({}, "x.example"), "No certificate present in SSL/TLS configuration for x.example.");
  assert.is(
    contextProblem({ certificate: join(dir, "missing.crt"), key: join(dir, "site.key") }, "x.example"),
    `SSL/TLS: Failed to load '${join(dir, "missing.crt")}': Check that the path is correct, and the file exists. (for x.example)`,
  );
});

s.run();
