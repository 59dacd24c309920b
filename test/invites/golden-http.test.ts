/**
 * Replays every request of golden/30-http-invites_api-internal.txt (captured from Prosody 0.12.3)
 * against our server and compares the status line, the header set (Date and order aside) and
 * the header values that carry meaning. Keys are made with our prosodyctl while the server runs.
 *
 * Documented deviations (README "Differences from Prosody"):
 * - requests Prosody answers with a bare HTTP/1.0 500 (no query string) get a proper answer:
 *   403 when the key is missing/invalid, 201 when a valid Bearer key is given;
 * - POST is routed like GET (Prosody routes only GET), so Access-Control-Allow-Methods adds POST;
 * - this test loads no invites_page, so Location is the invite's xmpp: URI;
 * - every answer of the invites_api app carries our added no-store/no-referrer/nosniff/anti-framing
 *   headers (they hold a new invite's URL, and the request a key): checked by value, and checked
 *   absent from the answers the app does not give.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { answeredByTokenApp, assertTokenHeaders, goldenFile, parseHttpTranscript, withTokenHeaders, type HttpCase } from "../helpers/golden.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";

const buf = goldenFile("30-http-invites_api-internal.txt");
const cases = buf ? parseHttpTranscript(buf) : [];
const GOLDEN_COM = "Ewy6aWNjmBqx/hHhAijU7Ecur4ywqdFzOiVx1FLDnnsEfRmKa";
const GOLDEN_ORG = "32MbGeNGTLsX/RDBOY7lXyMMcx9YxsYp-Q08iqf73TFx7Eho2";

/** Case id → the status we answer instead of Prosody's bare 500 / 404. */
const DEVIATIONS: Record<string, number> = {
  "01": 403, // no key, no query string
  "07": 201, // valid Bearer, no query string
  "08": 403, // Basic, no query string
  "10": 403, // "bearer", no query string
  "11": 403, // two spaces after Bearer, no query string
  "19": 201, // POST with key in query
  "20": 201, // POST with Bearer
  "25": 403, // HEAD without key
  "45": 403, // 6000-char Bearer value, no query string
};

const MEANINGFUL = ["connection", "content-type", "access-control-allow-origin", "access-control-allow-headers", "access-control-max-age"];

let rt: Runtime;
let port: number;
let dir: string;
let config: string;
let keys: { com: string; org: string };

test.before(async () => {
  if (!buf) return;
  setLogLevel("error");
  port = await freePort();
  ({ dir, config } = tempConfig(`
data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "http" }
VirtualHost "example.org"
modules_enabled = { "http" }
`));
  rt = await startServer(await loadConfigFile(config), { cwd: dir });
  // Keys made by another process while the server runs.
  const com = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com", "http test key"], { cwd: dir });
  const org = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.org", "org key"], { cwd: dir });
  keys = { com: com.stdout.trim(), org: org.stdout.trim() };
});

test.after(async () => {
  await rt?.stop();
});

function substitute(s: string): string {
  const [gcid, gcs] = GOLDEN_COM.split("/");
  const [goid, gos] = GOLDEN_ORG.split("/");
  const [cid, cs] = keys.com.split("/");
  const [oid, os] = keys.org.split("/");
  return s.replaceAll(gcid!, cid!).replaceAll(gcs!, cs!).replaceAll(goid!, oid!).replaceAll(gos!, os!);
}

function methods(v: string | undefined): string[] {
  return (v ?? "").split(",").map((x) => x.trim()).filter(Boolean).sort();
}

test("a key created by prosodyctl while the server runs works over HTTP at once", async (ctx) => {
  if (!buf) return skip(ctx, "shared/spec/golden not found");
  const created = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com", "fresh"], { cwd: dir });
  assert.is(created.code, 0);
  const r = await rawRequest(port, `GET /invites_api?key=${created.stdout.trim()} HTTP/1.1\r\nHost: example.com\r\n\r\n`);
  assert.is(r.status, 201);
  // and one deleted by prosodyctl stops working at once
  const del = await prosodyctl(["--config", config, "mod_invites_api", "delete", "example.com", created.stdout.split("/")[0]!], { cwd: dir });
  assert.is(del.code, 0);
  const r2 = await rawRequest(port, `GET /invites_api?key=${created.stdout.trim()} HTTP/1.1\r\nHost: example.com\r\n\r\n`);
  assert.is(r2.status, 403);
});

for (const c of cases) {
  test(`golden ${c.id}: ${c.title}`, async () => {
    assert.ok(keys.com.includes("/"), "key created");
    const ref: HttpCase = DEVIATIONS[c.id] === 403 ? cases.find((x) => x.id === "02")! : DEVIATIONS[c.id] === 201 ? cases.find((x) => x.id === "06")! : c;
    const head = c.request.map(substitute).join("\r\n") + "\r\n\r\n";
    const isHead = c.request[0]!.startsWith("HEAD ");
    const r = await rawRequest(port, head + (c.body ?? ""), { head: isHead });
    const label = `${c.id} ${c.title}: got ${r.statusLine}\n${r.headers.map((h) => h.join(": ")).join("\n")}`;
    const expectStatus = DEVIATIONS[c.id] ?? Number(c.status!.split(" ")[1]);
    assert.is(r.status, expectStatus, label);
    if (!DEVIATIONS[c.id]) assert.is(r.statusLine, c.status, label);
    const names = (hs: Array<[string, string]>) => [...new Set(hs.map(([k]) => k.toLowerCase()).filter((k) => k !== "date"))].sort();
    const target = c.request[0]!.split(" ")[1]!;
    const added = answeredByTokenApp(target, Number(ref.status!.split(" ")[1]), ref.headers.map(([k]) => k));
    // Our rate limits (plugins/mod_invites_api/limits.ts) add their headers to what a valid key gets.
    const limited = r.status === 201 || r.status === 303 ? ["ratelimit", "ratelimit-policy"] : [];
    assert.equal(names(r.headers), [...withTokenHeaders(names(ref.headers), added), ...limited].sort(), label);
    if (limited.length) assert.match(r.header("ratelimit") ?? "", /^"address";r=\d+;t=\d+, "key";r=\d+;t=\d+$/, label);
    assertTokenHeaders(r.header, added, label);
    for (const name of MEANINGFUL) {
      const want = ref.headers.find(([k]) => k.toLowerCase() === name)?.[1];
      if (want === undefined) continue;
      assert.is(r.header(name), want, `${label}\n(${name})`);
    }
    // Prosody echoes a request's Origin (cases 21 and 23) instead of answering "*".
    const origin = c.request.find((l) => l.startsWith("Origin: "))?.slice("Origin: ".length);
    if (origin && ref === c) assert.is(r.header("access-control-allow-origin"), origin, label);
    const gm = ref.headers.find(([k]) => k.toLowerCase() === "access-control-allow-methods")?.[1];
    if (gm) assert.equal(methods(r.header("access-control-allow-methods")), [...new Set([...methods(gm), "POST"])].sort(), label);
    if (!ref.headers.some(([k]) => k.toLowerCase() === "content-type")) {
      const len = ref.headers.find(([k]) => k.toLowerCase() === "content-length")?.[1];
      if (len !== undefined) assert.is(r.header("content-length"), len, label);
    }
    if (expectStatus === 201 || expectStatus === 303) {
      assert.match(r.header("location") ?? "", /^xmpp:example\.com\?register;preauth=[A-Za-z0-9_-]{24}$/, label);
      const token = r.header("location")!.split("preauth=")[1]!;
      const store = await rt.storage.open("example.com", "invite_token", "map");
      const invite = (await store.get(null, token)) as any;
      assert.is(invite?.additional_data?.source, `api/token/${keys.com.split("/")[0]}`, "the 201 invite is stored");
    }
    if (expectStatus === 200 && c.request[0]!.startsWith("GET / ")) assert.match(r.body.toString(), "Prosody is running!");
  });
}

test.run();
