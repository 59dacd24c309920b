/**
 * mod_invites_register_web on a real server (SQLite storage), case by case after golden
 * 40-http-pages-internal.txt R01–R23 and 50-interop I2h–I2l: status lines, header sets (Date and
 * order aside), the alert texts, and the storage effects (account records, roles, invites).
 *
 * Our deliberate differences (README "Differences"), asserted here:
 * - R14 (reused token, no query string) and R16 (multipart) give 303 / a registration, not 500;
 * - R20: a reset invite resets exactly its user's password; used for another name it is refused
 *   (I2l), as is a username-bound invite used for another name (I2k);
 * - success pages show the JID but never the password; HTML is our own;
 * - every answer carries no-store/no-referrer/nosniff/anti-framing headers (the token is in the
 *   URL, the form and the redirects).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import type { KeyvalStore, MapStore } from "../../src/storage/types.js";
import { startServer } from "../../src/server.js";
import { verifyScramPassword } from "../../src/util/scram.js";
import type { AuthProvider } from "../../plugins/mod_auth_internal_hashed/mod_auth_internal_hashed.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { tempConfig } from "../helpers/cli.js";
import { assertLanguageHeaders, assertTokenHeaders, goldenFile, withTokenHeaders } from "../helpers/golden.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";
import { recordOf } from "../helpers/records.js";

const HOST = "example.com";
const GOOD = "goodpassword1";

let rt: Runtime;
let port: number;
let invites: InvitesApi;
let auth: AuthProvider;
let accounts: KeyvalStore;
let roles: KeyvalStore;
let tokens: MapStore;

// --- golden transcript: status line and header names of each R case ---

interface GoldenCase {
  status: string;
  headers: string[];
}
const golden = new Map<string, GoldenCase>();
{
  const buf = goldenFile("40-http-pages-internal.txt");
  for (const sec of buf ? buf.toString("utf8").split(/^### /m).slice(1) : []) {
    const id = /^(R\d\d)\b/.exec(sec)?.[1];
    if (!id) continue;
    const resp = sec.split("\n").filter((l) => l.startsWith("< ")).map((l) => l.slice(2)).filter((l) => l !== "");
    golden.set(id, {
      status: resp[0]!,
      headers: [...new Set(resp.slice(1).map((h) => h.slice(0, h.indexOf(":")).toLowerCase()))].filter((h) => h !== "date").sort(),
    });
  }
}

const headerNames = (r: RawResponse) => [...new Set(r.headers.map(([k]) => k.toLowerCase()))].filter((h) => h !== "date").sort();

/**
 * Compares with the golden case: same status line and the same header names (Date aside), plus
 * the no-store/no-referrer/nosniff/anti-framing headers we add to every answer of this app, and
 * Content-Language/Vary on its HTML pages.
 */
function likeGolden(id: string, r: RawResponse, label = id, fromApp = true) {
  const header = (name: string) => r.headers.find(([k]) => k.toLowerCase() === name)?.[1];
  assertTokenHeaders(header, fromApp, label);
  // Our pages (not the redirects) say their language: English here, as no test asks for another.
  const page = fromApp && /^text\/html/.test(header("content-type") ?? "");
  assertLanguageHeaders(header, page, label);
  const g = golden.get(id);
  if (!g) return; // golden files not present: the explicit assertions still run
  assert.is(r.statusLine, g.status, `${label}: status line`);
  assert.equal(headerNames(r), withTokenHeaders(g.headers, fromApp, page), `${label}: header names`);
}

// --- requests ---

function request(method: string, target: string, opts: { body?: string | Buffer; type?: string; host?: string } = {}) {
  const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
  const head = [`${method} ${target} HTTP/1.1`, `Host: ${opts.host ?? HOST}`, "User-Agent: test", "Accept: */*"];
  if (body) head.push(`Content-Length: ${body.length}`, `Content-Type: ${opts.type ?? "application/x-www-form-urlencoded"}`);
  const raw = Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n"), body ?? Buffer.alloc(0)]);
  return rawRequest(port, raw, { head: method === "HEAD" });
}

const form_ = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const post = (fields: Record<string, string>, target = "/register") => request("POST", target, { body: form_(fields) });
const text = (r: RawResponse) => r.body.toString("utf8");
const alert = (r: RawResponse) => /<div class="alert alert-warning"[^>]*>([^<]*)<\/div>/.exec(text(r))?.[1];

async function newInvite(...args: Parameters<InvitesApi["createAccount"]>): Promise<string> {
  const [invite, err] = await invites.createAccount(...args);
  assert.ok(invite, String(err));
  return invite!.token;
}

function assertNoPassword(r: RawResponse, password: string) {
  assert.not.ok(text(r).includes(password), "the page never contains the password");
}

test.before(async () => {
  setLogLevel("error");
  port = await freePort();
  const { dir, config } = tempConfig(`
run_as_root = true
data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
-- Many forms from one address; the form's rate limit has its own test (invites/api-limits).
register_web_rate_per_ip = false
VirtualHost "example.com"
modules_enabled = { "invites", "invites_register", "invites_register_web", "http" }
VirtualHost "example.org"
modules_enabled = { "http" }
VirtualHost "chat.example"
modules_enabled = { "invites", "invites_register_web", "http" }
site_name = "Example <Chat>"
webchat_url = "https://chat.example/web/"
password_policy = { length = 10 }
`);
  rt = await startServer(await loadConfigFile(config), { cwd: dir });
  invites = rt.modules.get(HOST, "invites")!.exports as InvitesApi;
  auth = rt.modules.get(HOST, "auth_internal_hashed")!.exports as AuthProvider;
  accounts = await rt.storage.open(HOST, "accounts", "keyval");
  roles = await rt.storage.open(HOST, "roles", "keyval");
  tokens = await rt.storage.open(HOST, "invite_token", "map");
  // An app as mod_register_apps shares them (whether or not that module is loaded).
  const apps = rt.shared(`/${HOST}/register_apps/apps`) as { list?: unknown[]; byId?: Map<string, unknown> };
  const app = {
    id: "test-chat",
    name: "Test Chat",
    supports_preauth_uri: true,
    download: { buttons: [{ text: "Get Test Chat", url: "https://apps.example.net/test-chat" }] },
    setup: { text: "Open Test Chat and sign in." },
  };
  (apps.list ??= []).push(app);
  (apps.byId ??= new Map()).set(app.id, app);
  assert.equal(await auth.createUser("alice", "correct horse battery"), [true, undefined]);
});

test.after(async () => {
  await rt?.stop();
});

// --- GET ---

test("R01 GET /register?t=TOKEN: the form (fields, minlength from the policy, hidden token)", async () => {
  const token = await newInvite();
  const r = await request("GET", `/register?t=${token}`);
  likeGolden("R01", r);
  assert.is(r.header("content-type"), "text/html; charset=utf-8");
  const html = text(r);
  assert.match(html, "<title>example.com</title>");
  assert.match(html, "Create an account");
  assert.match(html, '<form method="post">');
  assert.match(html, /<input type="text" id="user" name="user" required minlength="1" maxlength="30"/);
  assert.match(html, "@example.com");
  assert.match(html, /<input type="password" id="password" name="password" required minlength="8"/);
  assert.match(html, `<input type="hidden" name="token" value="${token}">`);
  assert.not.match(html, 'name="app_id"');
  assert.equal(
    r.header("access-control-allow-methods")!.split(",").map((m) => m.trim()).sort(),
    ["GET", "OPTIONS", "POST"],
  );
});

test("R02 GET with c=APP: app button to the xmpp URI and hidden app_id; unknown app ignored", async () => {
  const token = await newInvite();
  const r = await request("GET", `/register?t=${token}&c=test-chat`);
  likeGolden("R02", r);
  const html = text(r);
  assert.match(html, `href="xmpp:example.com?register;preauth=${token}"`);
  assert.match(html, "Open Test Chat");
  assert.match(html, '<input type="hidden" name="app_id" value="test-chat">');
  const unknown = text(await request("GET", `/register?t=${token}&c=no-such-app`));
  assert.not.match(unknown, 'name="app_id"');
  assert.not.match(unknown, "{app");
});

test("R03/R04/R05 GET with a bad, missing or expired token: 303 to invites_page?<query>", async () => {
  const page = `http://example.com:${port}/invites_page`;
  const bad = await request("GET", "/register?t=badtoken");
  likeGolden("R03", bad);
  assert.is(bad.header("location"), `${page}?t=badtoken`);
  assert.is(bad.header("content-length"), "0");
  const none = await request("GET", "/register");
  likeGolden("R04", none);
  assert.is(none.header("location"), `${page}?`);
  const expired = await newInvite(undefined, undefined, -10);
  const exp = await request("GET", `/register?t=${expired}&c=test-chat`);
  likeGolden("R05", exp);
  assert.is(exp.header("location"), `${page}?t=${expired}&c=test-chat`);
});

test("a link preview (GET, HEAD, twice) never uses up the invite", async () => {
  const token = await newInvite();
  for (const method of ["GET", "GET", "HEAD"]) {
    const r = await request(method, `/register?t=${token}`);
    assert.is(r.status, 200, method);
  }
  assert.ok(await tokens.get(null, token), "still stored");
  assert.is((await request("GET", `/register?t=${token}`)).status, 200);
});

// --- POST: the checks, in Prosody's order, with its messages ---

test("R06–R11: missing fields, invalid username, taken (any case), short password, password with username", async () => {
  const token = await newInvite();
  const cases: Array<[string, Record<string, string>, string]> = [
    ["R06", { user: "bob", password: "", token }, "Please fill in all fields."],
    ["R06", { user: "", password: GOOD, token }, "Please fill in all fields."],
    ["R07", { user: "bad user@x", password: GOOD, token }, "This username contains invalid characters."],
    ["R08", { user: "alice", password: GOOD, token }, "This username is already in use."],
    ["R09", { user: "ALICE", password: GOOD, token }, "This username is already in use."],
    ["R10", { user: "bob", password: "short", token }, "Password is too short (minimum 8 characters)"],
    ["R11", { user: "bob", password: "xxBoBxx12345", token }, "Password must not include your username"],
  ];
  for (const [id, fields, message] of cases) {
    const r = await post(fields);
    likeGolden(id, r, `${id} ${JSON.stringify(fields)}`);
    assert.is(alert(r), message, id);
    assert.match(text(r), `<input type="hidden" name="token" value="${token}">`);
    if (fields.password && fields.password.length >= 8) assertNoPassword(r, fields.password);
  }
  // Missing fields are checked before the username; the username before existence.
  assert.is(alert(await post({ user: "bad user", password: "", token })), "Please fill in all fields.");
  assert.is(alert(await post({ user: "ALICE", password: "short", token })), "This username is already in use.");
  assert.not.ok(await auth.userExists("bob"));
  assert.ok(await tokens.get(null, token), "failed attempts leave the invite");
});

test("R12 success with app_id: nodeprepped user, the app's setup steps, no-cache headers, no password", async () => {
  const token = await newInvite();
  const r = await post({ user: "Bob", password: GOOD, token, app_id: "test-chat" });
  likeGolden("R12", r);
  assert.is(r.header("cache-control"), "no-cache, no-store, must-revalidate");
  assert.is(r.header("pragma"), "no-cache");
  assert.is(r.header("expires"), "0");
  const html = text(r);
  assert.match(html, "Congratulations!");
  assert.match(html, 'value="bob@example.com"');
  assert.match(html, 'href="https://apps.example.net/test-chat"');
  assert.match(html, "Open Test Chat and sign in.");
  assertNoPassword(r, GOOD);
  assert.ok(await auth.testPassword("bob", GOOD));
  assert.is(await tokens.get(null, token), undefined, "the invite is used up");
});

test("R17 success without app_id; the stored record is Prosody's and verifies with verifyScramPassword", async () => {
  const token = await newInvite();
  const r = await post({ user: "dave", password: GOOD, token });
  likeGolden("R17", r);
  assert.match(text(r), "Congratulations!");
  assert.match(text(r), 'value="dave@example.com"');
  assertNoPassword(r, GOOD);
  const record = recordOf(await accounts.get("dave"));
  assert.equal(Object.keys(record).sort(), ["iteration_count", "salt", "server_key", "stored_key"]);
  assert.is(record.iteration_count, 10000);
  assert.match(record.salt as string, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(await verifyScramPassword(record, GOOD));
  assert.not.ok(await verifyScramPassword(record, "wrong password"));
});

test("R13/R14/R15 reused or expired token: 303 with the query; without a query string too (Prosody: 500)", async () => {
  const token = await newInvite();
  assert.is((await post({ user: "carol0", password: GOOD, token })).status, 200);
  const page = `http://example.com:${port}/invites_page`;
  const q = await post({ user: "carol", password: GOOD, token }, `/register?t=${token}`);
  likeGolden("R13", q);
  assert.is(q.header("location"), `${page}?t=${token}`);
  const noq = await post({ user: "carol", password: GOOD, token });
  likeGolden("R13", noq, "R14 (our 303)");
  assert.is(noq.header("location"), `${page}?`);
  const expired = await newInvite(undefined, undefined, -10);
  const exp = await post({ user: "carol", password: GOOD, token: expired }, `/register?t=${expired}`);
  likeGolden("R15", exp);
  assert.is(exp.header("location"), `${page}?t=${expired}`);
  assert.is((await post({ user: "carol", password: GOOD })).status, 303, "no token at all");
  assert.not.ok(await auth.userExists("carol"));
});

test("R16 multipart/form-data is read (Prosody: 500); malformed multipart 400; other body types 415", async () => {
  const token = await newInvite();
  const boundary = "------------------------7a05baf8d9b2ff77";
  const part = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const body = part("user", "multi") + part("password", GOOD) + part("token", token) + `--${boundary}--\r\n`;
  const r = await request("POST", "/register", { body, type: `multipart/form-data; boundary=${boundary}` });
  likeGolden("R17", r, "R16 (our success)");
  assert.match(text(r), 'value="multi@example.com"');
  assert.ok(await auth.testPassword("multi", GOOD));

  const broken = await request("POST", "/register", { body: `--${boundary}\r\nContent-Disposition: form-data; name="user"\r\n\r\nx`, type: `multipart/form-data; boundary=${boundary}` });
  assert.is(broken.status, 400);
  const noBoundary = await request("POST", "/register", { body: "x", type: "multipart/form-data" });
  assert.is(noBoundary.status, 400);
  const json = await request("POST", "/register", { body: JSON.stringify({ user: "j", password: GOOD, token }), type: "application/json" });
  assert.is(json.status, 415);
  assert.not.ok(await auth.userExists("j"));
});

// --- invites with extra meaning ---

test("R19/R20 password-reset invite: the form is for alice only; it resets alice's password (Prosody cannot)", async () => {
  const [reset] = await invites.createAccountReset("alice");
  const token = reset!.token;
  const events: Array<Record<string, unknown>> = [];
  const bus = rt.eventsFor(HOST);
  const onReset = (e: Record<string, unknown>) => void events.push({ ...e });
  const onRegistered = () => void events.push({ registered: true });
  bus.hook("user-password-reset", onReset);
  bus.hook("user-registered", onRegistered);
  try {
    const form = await request("GET", `/register?t=${token}`);
    likeGolden("R19", form);
    assert.match(text(form), /name="user"[^>]* value="alice" readonly/);
    assert.match(text(form), "Reset your password");

    // I2l: Prosody registers a new account "oscar" with alice's reset token.
    const other = await post({ user: "oscar", password: GOOD, token });
    assert.is(other.status, 200);
    assert.is(alert(other), "This invite can only change the password of alice@example.com.");
    assert.not.ok(await auth.userExists("oscar"));

    const weak = await post({ user: "alice", password: "alice12345", token });
    assert.is(alert(weak), "Password must not include your username");

    const r = await post({ user: "Alice", password: "newpassword99", token });
    likeGolden("R21", r, "R20 (our reset)");
    assert.match(text(r), "Congratulations!");
    assert.match(text(r), 'value="alice@example.com"');
    assertNoPassword(r, "newpassword99");
    assert.ok(await auth.testPassword("alice", "newpassword99"));
    assert.not.ok(await auth.testPassword("alice", "correct horse battery"));
    assert.is(events.length, 1);
    assert.is(events[0]!.username, "alice");
    assert.is((events[0]!.validated_invite as { token: string }).token, token);
    assert.is(await tokens.get(null, token), undefined, "the reset invite is used up");
    assert.is((await post({ user: "alice", password: "another-pass1", token })).status, 303);
  } finally {
    bus.unhook("user-password-reset", onReset);
    bus.unhook("user-registered", onRegistered);
  }
});

test("I2k a username-bound invite registers only that username", async () => {
  const token = await newInvite("zed");
  const form = await request("GET", `/register?t=${token}`);
  assert.match(text(form), /name="user"[^>]* value="zed" readonly/);
  const mallory = await post({ user: "mallory", password: GOOD, token });
  assert.is(alert(mallory), "This invite is for the username zed.");
  assert.not.ok(await auth.userExists("mallory"));
  const zed = await post({ user: "zed", password: GOOD, token });
  assert.match(text(zed), 'value="zed@example.com"');
  assert.ok(await auth.testPassword("zed", GOOD));
});

test("R21 admin invite: roles record {prosody:admin = true} (golden roles/erin.dat); R22 group invite: no roles", async () => {
  const admin = await newInvite(undefined, { groups: [], roles: { "prosody:admin": true } });
  const r = await post({ user: "gina", password: GOOD, token: admin });
  likeGolden("R21", r);
  assert.match(text(r), 'value="gina@example.com"');
  assert.equal(await roles.get("gina"), { "prosody:admin": true });

  const group = await newInvite(undefined, { groups: ["g1", "g2"] });
  const g = await post({ user: "frank", password: GOOD, token: group });
  likeGolden("R22", g);
  assert.is(await roles.get("frank"), undefined);
  assert.is(await tokens.get(null, group), undefined);
});

test("I2h/I2i a reusable invite with roles: two registrations, the invite stays, both get the roles", async () => {
  const [g] = await invites.createGroup(["team"], { roles: { "prosody:admin": true } }, 3600);
  for (const user of ["judy", "kate"]) {
    const r = await post({ user, password: GOOD, token: g!.token });
    assert.match(text(r), `value="${user}@example.com"`);
    assert.equal(await roles.get(user), { "prosody:admin": true });
  }
  assert.ok(await tokens.get(null, g!.token));
});

test("I2e/I2j a hand-written minimal invite {expires} gives pages, never a 500", async () => {
  await tokens.set(null, "interopInviteTok2", { expires: Math.floor(Date.now() / 1000) + 3600 });
  const form = await request("GET", "/register?t=interopInviteTok2");
  assert.is(form.status, 200);
  const r = await post({ user: "liam", password: GOOD, token: "interopInviteTok2" });
  assert.is(r.status, 200);
  assert.match(text(r), 'value="liam@example.com"');
  assert.is(await tokens.get(null, "interopInviteTok2"), undefined);
});

test("user-registering veto shows the error page; user-registered carries Prosody's payload", async () => {
  const token = await newInvite();
  const bus = rt.eventsFor(HOST);
  const veto = (e: Record<string, unknown>) => {
    if (e.username === "vetoed") {
      e.allowed = false;
      e.reason = "Not today <b>";
    }
    return undefined;
  };
  let registered: Record<string, unknown> | undefined;
  const onRegistered = (e: Record<string, unknown>) => void (registered = e);
  bus.hook("user-registering", veto, 10);
  bus.hook("user-registered", onRegistered, 10);
  try {
    const r = await post({ user: "vetoed", password: GOOD, token });
    assert.is(r.status, 200);
    assert.match(text(r), "Not today &lt;b&gt;");
    assert.match(text(r), 'class="alert alert-danger"');
    assert.not.ok(await auth.userExists("vetoed"));
    assert.ok(await tokens.get(null, token), "a refused registration leaves the invite");

    const ok = await post({ user: "paul", password: GOOD, token });
    assert.match(text(ok), "Congratulations!");
    assert.ok(registered);
    assert.is(registered!.username, "paul");
    assert.is(registered!.host, HOST);
    assert.is(registered!.source, "mod_invites_register_web");
    assert.is(registered!.ip, "127.0.0.1");
    assert.is((registered!.validated_invite as { token: string }).token, token);
  } finally {
    bus.unhook("user-registering", veto);
    bus.unhook("user-registered", onRegistered);
  }
});

test("a user-registering handler may veto after an awaited storage lookup (fired with fireEventAsync)", async () => {
  const token = await newInvite();
  const blocklist = await rt.storage.open(HOST, "test_blocklist", "keyval");
  await blocklist.set("ursula", { reason: "Blocked by the test" });
  const bus = rt.eventsFor(HOST);
  const veto = async (e: Record<string, unknown>) => {
    const found = await blocklist.get(e.username as string);
      const entry = found && recordOf(found);
    if (entry) {
      e.allowed = false;
      e.reason = entry.reason;
    }
  };
  bus.hook("user-registering", veto, 10);
  try {
    const r = await post({ user: "ursula", password: GOOD, token });
    assert.is(r.status, 200);
    assert.match(text(r), "Blocked by the test");
    assert.not.ok(await auth.userExists("ursula"), "the awaited veto was respected");
    assert.ok(await tokens.get(null, token), "a refused registration leaves the invite");
    const ok = await post({ user: "victor", password: GOOD, token });
    assert.match(text(ok), "Congratulations!");
    assert.ok(await auth.userExists("victor"));
  } finally {
    bus.unhook("user-registering", veto);
    await blocklist.set("ursula", undefined);
  }
});

test("one single-use invite, two simultaneous registrations: exactly one account", async () => {
  const token = await newInvite();
  const [a, b] = await Promise.all([post({ user: "race1", password: GOOD, token }), post({ user: "race2", password: GOOD, token })]);
  assert.equal([a.status, b.status].sort(), [200, 303]);
  const created = [await auth.userExists("race1"), await auth.userExists("race2")];
  assert.equal(created.filter(Boolean).length, 1);
});

test("OPTIONS /register is answered; R23 Host example.org (module not loaded there) gets 404", async () => {
  const opt = await request("OPTIONS", "/register");
  assert.is(opt.status, 200);
  assertTokenHeaders(opt.header, true, "OPTIONS /register");
  const token = await newInvite();
  const org = await request("GET", `/register?t=${token}`, { host: "example.org" });
  likeGolden("R23", org, "R23", false);
  assert.is(org.status, 404);
});

test("site_name, webchat_url and the host's password policy; works without mod_invites_register", async () => {
  const chatInvites = rt.modules.get("chat.example", "invites")!.exports as InvitesApi;
  const [invite] = await chatInvites.createAccount();
  const token = invite!.token;
  const form = await request("GET", `/register?t=${token}`, { host: "chat.example" });
  assert.match(text(form), "<title>Example &lt;Chat&gt;</title>");
  assert.match(text(form), 'minlength="10"');
  assert.match(text(form), "@chat.example");
  const short = await request("POST", "/register", { host: "chat.example", body: form_({ user: "olga", password: "ninechars", token }) });
  assert.is(alert(short), "Password is too short (minimum 10 characters)");
  const ok = await request("POST", "/register", { host: "chat.example", body: form_({ user: "olga", password: "tencharsok", token }) });
  assert.match(text(ok), 'value="olga@chat.example"');
  assert.match(text(ok), 'href="https://chat.example/web/"');
  const chatTokens = await rt.storage.open("chat.example", "invite_token", "map");
  assert.is(await chatTokens.get(null, token), undefined, "consumed by the web module itself");
  assert.not.ok(await auth.userExists("olga"), "accounts are per host");
});

test.run();
