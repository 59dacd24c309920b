/** mod_invites_api under bad input: never a 5xx, never a crash, always a clean answer. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";

let rt: Runtime;
let port: number;
let key: string;

test.before(async () => {
  setLogLevel("error");
  port = await freePort();
  const { dir, config } = tempConfig(`
data_path = "$DIR/data"
http_ports = { ${port} }
storage = "sql"
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "http" }
`);
  rt = await startServer(await loadConfigFile(config), { cwd: dir });
  key = (await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir })).stdout.trim();
});

test.after(async () => {
  await rt?.stop();
});

const get = (target: string | Buffer, headers = "Host: example.com\r\n") =>
  rawRequest(port, Buffer.concat([Buffer.from("GET "), Buffer.isBuffer(target) ? target : Buffer.from(target), Buffer.from(` HTTP/1.1\r\n${headers}\r\n`)]));

test("odd keys are refused with 403", async () => {
  const [id] = key.split("/");
  const cases = [
    "/invites_api?key=",
    "/invites_api?key=/",
    "/invites_api?key=%2F",
    `/invites_api?key=${id}/`,
    `/invites_api?key=/${key}`,
    "/invites_api?key=%FF%FE/%C0%AF",
    "/invites_api?key=%",
    "/invites_api?key=%zz/%",
    "/invites_api?key=a%00b/c",
    `/invites_api?key=${"A".repeat(8000)}/x`,
    `/invites_api?${"key=x/y&".repeat(500)}`,
    "/invites_api?=&&&=",
    "/invites_api?key",
    `/invites_api?key=${id}/${"x".repeat(36)}`,
  ];
  for (const target of cases) {
    const r = await get(target);
    assert.is(r.status, 403, target.slice(0, 80));
  }
});

test("a key that worked once does not let a wrong secret in later (recently-verified secrets)", async () => {
  const [id, secret] = key.split("/") as [string, string];
  assert.is((await get(`/invites_api?key=${key}`)).status, 201);
  const flipped = (secret[0] === "a" ? "b" : "a") + secret.slice(1); // same length, one byte off
  assert.is((await get(`/invites_api?key=${id}/${flipped}`)).status, 403);
  assert.is((await get(`/invites_api?key=${id}/${secret}x`)).status, 403);
  assert.is((await get(`/invites_api?key=${id}/${secret.slice(0, -1)}`)).status, 403);
  assert.is((await get(`/invites_api?key=${key}`)).status, 201);
});

test("raw non-UTF-8 bytes in the path and query get a clean 4xx", async () => {
  for (const bytes of [Buffer.from([0x2f, 0x69, 0x6e, 0x76, 0xff, 0xfe]), Buffer.concat([Buffer.from("/invites_api?key="), Buffer.from([0xc3, 0x28, 0xff, 0x2f, 0x80])])]) {
    const r = await get(bytes);
    assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
  }
});

test("odd Authorization headers are refused with 403, never 5xx", async () => {
  for (const auth of ["", "Bearer", "Bearer ", `Bearer ${key} extra`, "Bearer \u00ff\u00fe", `Basic ${key}`, `Bearer  ${key}`, `Bearer ${"x".repeat(7000)}`]) {
    const r = await get("/invites_api", `Host: example.com\r\nAuthorization: ${auth}\r\n`);
    assert.is(r.status, 403, JSON.stringify(auth.slice(0, 40)));
  }
  const ok = await get("/invites_api", `Host: example.com\r\nAuthorization: Bearer ${key}\r\n`);
  assert.is(ok.status, 201, "a valid Bearer key without any query string works (Prosody: 500)");
});

test("odd Host headers: 4xx with Prosody's messages, never 5xx", async () => {
  const hosts = ["EXAMPLE.COM", "example.com.", "[::1]:5280", "exa mple.com", "x".repeat(5000), "\u00e9xample.com", "", "example.com:abc"];
  for (const h of hosts) {
    const r = await get(`/invites_api?key=${key}`, `Host: ${h}\r\n`);
    assert.ok(r.status === 400 || r.status === 404, `${h.slice(0, 30)} → ${r.status}`);
  }
  // Prosody strips ":<digits>" without checking that it is a valid port.
  for (const h of ["example.com:99999"]) {
    const r = await get(`/invites_api?key=${key}`, `Host: ${h}\r\n`);
    assert.is(r.status, 201, h);
  }
  const dup = await get(`/invites_api?key=${key}`, "Host: example.com\r\nHost: other\r\n");
  assert.ok(dup.status < 500, `duplicate Host → ${dup.status}`);
});

test("absurd headers: a head over 10 KiB is refused cleanly, many small headers are fine", async () => {
  const huge = await get(`/invites_api?key=${key}`, `Host: example.com\r\nX-Big: ${"a".repeat(20000)}\r\n`);
  assert.ok(huge.status === 431 || huge.status === 400, `huge head → ${huge.status}`);
  let many = "Host: example.com\r\n";
  for (let i = 0; i < 80; i++) many += `X-H${i}: v\r\n`;
  const r = await get(`/invites_api?key=${key}`, many);
  assert.is(r.status, 201);
});

test("the server is still healthy after all of that", async () => {
  const r = await get(`/invites_api?key=${key}&redirect=1`);
  assert.is(r.status, 303);
  assert.match(r.header("location") ?? "", /^xmpp:example\.com\?register;preauth=/);
});

test.run();
