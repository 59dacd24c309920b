/**
 * mod_http_openmetrics: /metrics parsed by a real OpenMetrics parser (prometheus_client's, from
 * Debian's python3-prometheus-client), values that move with invites created / used / expired,
 * HTTP answers and SQLite commits; Prosody's access rules (loopback by default, allow_ips,
 * allow_cidr; 403 otherwise) and its 404 when statistics are not enabled.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import { tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";

const PYTHON = "/usr/bin/python3";
const PARSER = `
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
`;
const parserMissing = ((): string | false => {
  if (!existsSync(PYTHON)) return `${PYTHON} is missing`;
  const r = spawnSync(PYTHON, ["-c", "import prometheus_client.openmetrics.parser"], { encoding: "utf8" });
  return r.status === 0 ? false : "python3-prometheus-client is not installed (apt-get install python3-prometheus-client)";
})();

type Sample = [name: string, labels: Record<string, string>, value: number];

/** Parses with prometheus_client's OpenMetrics parser; a malformed exposition throws there. */
function parse(text: string): Sample[] {
  const r = spawnSync(PYTHON, ["-c", PARSER], { input: text, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`the OpenMetrics parser refused the exposition: ${r.stderr}\n${text.slice(0, 2000)}`);
  return JSON.parse(r.stdout) as Sample[];
}

function value(samples: Sample[], name: string, labels: Record<string, string>): number {
  const hit = samples.find(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v));
  return hit ? hit[2] : 0;
}

async function start(body: string): Promise<{ rt: Runtime; port: number }> {
  const port = await freePort();
  const { dir, config } = tempConfig(`data_path = "$DIR/data"\nhttp_ports = { ${port} }\n${body}`);
  return { rt: await startServer(await loadConfigFile(config), { cwd: dir }), port };
}

const get = (port: number, target: string, extra = "") =>
  rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: example.com\r\n${extra}\r\n`);
const post = (port: number, target: string, form: Record<string, string>) => {
  const body = new URLSearchParams(form).toString();
  return rawRequest(port, `POST ${target} HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
};

let main: { rt: Runtime; port: number } | undefined;
let invites: InvitesApi;

test.before(async () => {
  setLogLevel("error");
  main = await start(`
statistics = "internal"
statistics_interval = "manual"
storage = "sql"
modules_enabled = { "http_openmetrics" }
VirtualHost "example.com"
modules_enabled = { "http", "invites", "invites_register", "invites_register_web" }
`);
  invites = main.rt.modules.get("example.com", "invites")!.exports as InvitesApi;
});

test.after(async () => {
  await main?.rt.stop();
});

async function scrape(port: number): Promise<{ r: RawResponse; samples: Sample[] }> {
  const r = await get(port, "/metrics");
  assert.is(r.status, 200, r.body.toString());
  return { r, samples: parse(r.body.toString("utf8")) };
}

test("GET /metrics from loopback: Prosody's content type, an exposition the OpenMetrics parser accepts", async (ctx) => {
  if (parserMissing) return skip(ctx, parserMissing);
  const { r, samples } = await scrape(main!.port);
  assert.is(r.header("content-type"), "application/openmetrics-text; version=0.0.4");
  assert.match(r.body.toString(), /# EOF\n$/);
  assert.ok(samples.some(([n]) => n === "prosody_storage_journal_bytes"), "the SQLite journal gauge is there");
});

test("invites created / used / expired move, by type and source bucket", async (ctx) => {
  if (parserMissing) return skip(ctx, parserMissing);
  const before = (await scrape(main!.port)).samples;
  const created = (type: string, source: string, s: Sample[]) => value(s, "prosody_invites_created_total", { host: "example.com", type, source });
  const [a] = await invites.createAccount(undefined, { source: "api/token/k1" });
  await invites.createAccount(undefined, { source: "admin_api/admin@example.com" });
  await invites.createAccount(undefined, { source: "something-else" });
  await invites.createAccountReset("alice");
  await invites.createAccount(undefined, undefined, -10); // already expired
  // Used through the registration form.
  const reg = await post(main!.port, "/register", { user: "newbie", password: "a good password", token: a!.token });
  assert.is(reg.status, 200, reg.body.toString().slice(0, 300));
  assert.is(await invites.purgeExpired(), 1);

  const after = (await scrape(main!.port)).samples;
  assert.is(created("account", "api", after) - created("account", "api", before), 1);
  assert.is(created("account", "admin_api", after) - created("account", "admin_api", before), 1);
  assert.is(created("account", "other", after) - created("account", "other", before), 2);
  assert.is(created("reset", "other", after) - created("reset", "other", before), 1);
  const used = (s: Sample[]) => value(s, "prosody_invites_used_total", { host: "example.com", type: "account", source: "api" });
  assert.is(used(after) - used(before), 1);
  const expired = (s: Sample[]) => value(s, "prosody_invites_expired_total", { host: "example.com", type: "account", source: "other" });
  assert.is(expired(after) - expired(before), 1);
});

test("HTTP answers by route and status, a latency histogram, SQLite commit latency", async (ctx) => {
  if (parserMissing) return skip(ctx, parserMissing);
  const before = (await scrape(main!.port)).samples;
  const statuses = new Set<number>();
  for (let i = 0; i < 3; i++) statuses.add((await get(main!.port, "/register?t=nosuchtoken")).status);
  assert.is(statuses.size, 1);
  assert.is((await get(main!.port, "/no/such/path")).status, 404);
  await invites.createAccount(); // one commit at least
  const after = (await scrape(main!.port)).samples;
  const route = { route: "GET example.com/register", status: String([...statuses][0]) };
  assert.is(value(after, "prosody_http_requests_total", route) - value(before, "prosody_http_requests_total", route), 3);
  const none = { route: "none", status: "404" };
  assert.is(value(after, "prosody_http_requests_total", none) - value(before, "prosody_http_requests_total", none), 1);
  const count = (s: Sample[]) => value(s, "prosody_http_request_duration_seconds_count", { route: "GET example.com/register" });
  assert.is(count(after) - count(before), 3);
  const inf = value(after, "prosody_http_request_duration_seconds_bucket", { route: "GET example.com/register", le: "+Inf" });
  assert.is(inf, count(after));
  const commits = (s: Sample[]) => value(s, "prosody_storage_commit_duration_seconds_count", { driver: "SQLite3", ok: "true" });
  assert.ok(commits(after) - commits(before) >= 1, "commits are timed");
  assert.ok(value(after, "prosody_storage_journal_bytes", {}) > 0, "the journal has records");
});

test("a client address not allowed gets 403 (default: loopback only)", async () => {
  const r = await get(main!.port, "/metrics", "X-Forwarded-For: 192.0.2.7\r\n");
  assert.is(r.status, 403);
});

test("openmetrics_allow_ips without loopback, openmetrics_allow_cidr: exactly those", async () => {
  const s = await start(`
statistics = "internal"
openmetrics_allow_ips = { "198.51.100.1" }
openmetrics_allow_cidr = "192.0.2.0/28"
modules_enabled = { "http_openmetrics" }
VirtualHost "example.com"
modules_enabled = { "http" }
`);
  try {
    const as = async (ip?: string) => (await get(s.port, "/metrics", ip ? `X-Forwarded-For: ${ip}\r\n` : "")).status;
    assert.is(await as(), 403, "loopback is no longer allowed");
    assert.is(await as("198.51.100.1"), 200);
    assert.is(await as("198.51.100.2"), 403);
    assert.is(await as("192.0.2.5"), 200);
    assert.is(await as("192.0.2.16"), 403);
    assert.is(await as("2001:db8::1"), 403);
  } finally {
    await s.rt.stop();
  }
});

test("without statistics enabled: 404 'No statistics provider configured' (as Prosody)", async () => {
  const s = await start(`
modules_enabled = { "http_openmetrics" }
VirtualHost "example.com"
modules_enabled = { "http" }
`);
  try {
    const r = await get(s.port, "/metrics");
    assert.is(r.status, 404);
    assert.is(r.body.toString(), "No statistics provider configured\n");
    assert.match(r.header("content-type") ?? "", /^text\/plain/);
    assert.is((await get(s.port, "/metrics", "X-Forwarded-For: 192.0.2.7\r\n")).status, 403, "the address is checked first");
  } finally {
    await s.rt.stop();
  }
});

test.run();
