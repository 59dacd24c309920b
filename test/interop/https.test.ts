/**
 * HTTPS beside the real Prosody 0.12: one config, one certificates directory, one data
 * directory. Both serve the invites API over TLS with the certificate Prosody's certmanager
 * picks, and both build the invite's landing-page URL with mod_http's rule (the https service,
 * its port), whether the API is reached over https or plain http.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { makeCert, opensslMissing } from "../helpers/certs.js";
import { PROSODYCTL } from "../helpers/cli.js";
import { freePort, rawRequest, waitForHttp } from "../helpers/http.js";
import { prosodyMissing } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

function httpsLocation(port: number, ca: string, key: string): Promise<{ status: number; location: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      // With the key in the query: Prosody answers 500 to a request without a query string.
      { host: "127.0.0.1", port, path: `/invites_api?key=${key}`, servername: "example.com", ca, agent: false, headers: { host: "example.com" } },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, location: String(res.headers.location) });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.on("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await done;
  clearTimeout(t);
}

test("real Prosody and prosody-ts serve the invites API over https with the same certificate and URL rule", async (ctx) => {
  const missing = opensslMissing() ?? prosodyMissing();
  if (missing) return skip(ctx, missing);
  const dir = mkdtempSync(join(tmpdir(), "interop-https-"));
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, "data"));
  const ca = makeCert(join(dir, "certs", "example.com.crt"), join(dir, "certs", "example.com.key"), { cn: "example.com", dns: ["example.com"] });
  const [pHttp, pHttps, oHttp, oHttps] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(
    config,
    `pidfile = "${dir}/prosody.pid"
data_path = "${dir}/data"
certificates = "certs"
log = { warn = "${dir}/prosody.log" }
http_ports = { ${pHttp} }
http_interfaces = { "127.0.0.1" }
https_ports = { ${pHttps} }
https_interfaces = { "127.0.0.1" }
c2s_ports = {}
s2s_ports = {}
storage = "internal"
invites_api_plaintext_keys = true
modules_enabled = { "http", "invites", "invites_api", "invites_page" }
VirtualHost "example.com"
`,
  );
  const ours = join(dir, "ours.cfg.lua");
  writeFileSync(ours, `Include "prosody.cfg.lua"\npidfile = "${dir}/ours.pid"\nhttp_ports = { ${oHttp} }\nhttps_ports = { ${oHttps} }\n`);
  execFileSync("chown", ["-R", "prosody:prosody", dir]);

  let prosody: ChildProcess | undefined;
  let server: ChildProcess | undefined;
  let ourOutput = "";
  try {
    prosody = spawn("runuser", ["-u", "prosody", "--", "prosody", "--config", config, "-F"], { cwd: dir, stdio: "ignore" });
    await waitForHttp(pHttp, "Prosody", () => (existsSync(join(dir, "prosody.log")) ? readFileSync(join(dir, "prosody.log"), "utf8") : ""));
    server = spawn(process.execPath, [PROSODYCTL, "--config", ours, "start"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    server.stdout!.on("data", (d) => (ourOutput += d));
    server.stderr!.on("data", (d) => (ourOutput += d));
    await waitForHttp(oHttp, "prosody-ts", () => ourOutput);

    const made = spawnSync("prosodyctl", ["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir, encoding: "utf8" });
    const key = made.stdout.trim().split("\n").pop()!;
    assert.match(key, /^\S+\/\S+$/, made.stdout + made.stderr);

    const theirs = await httpsLocation(pHttps, ca, key);
    const mine = await httpsLocation(oHttps, ca, key);
    assert.is(theirs.status, 201);
    assert.is(mine.status, 201, ourOutput);
    const shape = (location: string, port: number) => location.replace(`:${port}/`, ":PORT/").replace(/\?.*$/, "?TOKEN");
    assert.is(shape(theirs.location, pHttps), "https://example.com:PORT/invites_page?TOKEN", theirs.location);
    assert.is(shape(mine.location, oHttps), shape(theirs.location, pHttps), mine.location);

    // Over plain http both still hand out the https URL.
    for (const [port, httpsPort] of [[pHttp, pHttps], [oHttp, oHttps]] as const) {
      const plain = await rawRequest(port, `GET /invites_api?key=${key} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`);
      assert.is(plain.status, 201);
      assert.is(shape(plain.header("location") ?? "", httpsPort), "https://example.com:PORT/invites_page?TOKEN");
    }
  } finally {
    await stop(server);
    await stop(prosody);
  }
});

test.run();
