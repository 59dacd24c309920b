/**
 * `prosodyctl mod_invites_api` extensions (plugins/mod_invites_api/cli.ts, keys.ts, usage.ts):
 * create --scope/--expires-after/--rate, the default record kept Prosody's, usage errors, list
 * columns, rotate with its grace period (time injected through authorize's `at`), last use.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import { createRuntime } from "../../src/create-runtime.js";
import type { Runtime } from "../../src/core/runtime.js";
import { main } from "../../src/cli/prosodyctl.js";
import { authorize } from "../../plugins/mod_invites_api/authorize.js";
import { keyUsage, USAGE_PRECISION } from "../../plugins/mod_invites_api/usage.js";
import { tempConfig } from "../helpers/cli.js";

const BASE = `
data_path = "$DIR/data"
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "http" }
`;

interface Setup {
  dir: string;
  config: string;
  ctl(...args: string[]): Promise<{ code: number; out: string }>;
  record(keyId: string): Promise<Record<string, unknown> | undefined>;
  rt: Runtime;
}

const open: Runtime[] = [];

async function setup(extra = ""): Promise<Setup> {
  const { dir, config } = tempConfig(BASE + extra);
  const rt = createRuntime({ config: await loadConfigFile(config), processType: "prosodyctl", cwd: dir });
  open.push(rt);
  const ctl = async (...args: string[]) => {
    let out = "";
    const code = await main(["--config", config, "mod_invites_api", ...args], { stdout: (t) => void (out += t), stderr: (t) => void (out += t), cwd: dir, env: {} });
    return { code, out };
  };
  const record = async (keyId: string) => {
    const store = await rt.storage.open("example.com", "invite_api_keys", "map");
    return (await store.get(null, keyId)) as Record<string, unknown> | undefined;
  };
  return { dir, config, ctl, record, rt };
}

const KEY = /^([A-Za-z0-9_-]{12})\/([A-Za-z0-9_-]{36})\n$/;
const nowS = () => Math.floor(Date.now() / 1000);
const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` }, url: { path: "/", query: undefined } }) as never;

test.before(() => setLogLevel("error"));
test.after(async () => {
  for (const rt of open) await rt.stop();
});

test("create without flags writes Prosody's record shape: no scopes, expires or rate", async () => {
  const s = await setup("invites_api_plaintext_keys = true\n");
  const { code, out } = await s.ctl("create", "example.com", "plain");
  assert.is(code, 0);
  const [, id, secret] = KEY.exec(out)!;
  const rec = (await s.record(id!))!;
  assert.equal(Object.keys(rec).sort(), ["allowed_methods", "created_at", "id", "name", "token"]);
  assert.equal(rec.allowed_methods, { GET: true, POST: true });
  assert.is(rec.token, secret);
  assert.is(rec.name, "plain");
});

test("create --scope/--expires-after/--rate store the key's scopes, expiry and rate", async () => {
  const s = await setup();
  const before = nowS();
  const { code, out } = await s.ctl("create", "example.com", "portal", "--scope", "read", "--scope=revoke,create", "--expires-after", "30d", "--rate=5/minute");
  assert.is(code, 0, out);
  const id = KEY.exec(out)![1]!;
  const rec = (await s.record(id))!;
  assert.equal(rec.scopes, ["read", "revoke", "create"]);
  assert.ok((rec.expires as number) >= before + 30 * 86400 && (rec.expires as number) <= nowS() + 30 * 86400);
  assert.is(rec.rate, "5/minute");
  assert.is(rec.name, "portal");
  // Flags before the name, and a name after "--" that looks like a flag.
  const two = await s.ctl("create", "example.com", "--scope", "admin", "--", "--odd-name");
  assert.is(two.code, 0, two.out);
  const rec2 = (await s.record(KEY.exec(two.out)![1]!))!;
  assert.equal([rec2.scopes, rec2.name], [["admin"], "--odd-name"]);
});

test("bad flags: one clear error line, the usage, exit 1, nothing created", async () => {
  const s = await setup();
  const cases: Array<[string[], RegExp]> = [
    [["--scope", "everything"], /^Error: unknown scope "everything" \(scopes: create, read, revoke, admin\)\n/],
    [["--expires-after", "soon"], /^Error: unable to parse duration: soon /],
    [["--rate", "fast"], /^Error: unable to parse rate: fast /],
    [["--rate"], /^Error: --rate needs a value\n/],
    [["--frobnicate"], /^Error: unknown option --frobnicate\n/],
  ];
  for (const [flags, message] of cases) {
    const r = await s.ctl("create", "example.com", "k", ...flags);
    assert.is(r.code, 1, flags.join(" "));
    assert.match(r.out, message);
    assert.match(r.out, /\n prosodyctl mod_invites_api create HOST \[NAME\] \[--scope create\|read\|revoke\|admin …\]/);
  }
  assert.is((await s.ctl("list", "example.com")).out, "");
});

test("list: Prosody's id<TAB>name until a key has our fields, then scopes, expiry, rate and last use", async () => {
  const s = await setup();
  const a = KEY.exec((await s.ctl("create", "example.com", "tab\there")).out)![1]!;
  const plain = await s.ctl("list", "example.com");
  assert.is(plain.out, `${a}\ttab\there\n`);
  // --long shows the columns for Prosody's keys too (and escapes the tab in the name).
  assert.is((await s.ctl("list", "example.com", "--long")).out, `${a}\ttab\\there\tcreate\tnever\tdefault\tnever\n`);
  assert.match((await s.ctl("list", "example.com", "--wide")).out, /^Error: unknown option for list: --wide\n/);

  const b = KEY.exec((await s.ctl("create", "example.com", "scoped", "--scope", "read", "--expires-after", "1d", "--rate", "10/hour")).out)![1]!;
  const expires = (await s.record(b))!.expires as number;
  const iso = new Date(expires * 1000).toISOString().replace(/\.000Z$/, "Z");
  // A use of key a (in the server, usage.ts) shows as its last use.
  const module = s.rt.modules.get("example.com", "invites_api") ?? (await s.rt.modules.load("example.com", "invites_api"));
  const used = keyUsage(module);
  used.touch(a, 1_800_000_000);
  for (let i = 0; i < 50 && !(await used.all()).has(a); i++) await new Promise((r) => setTimeout(r, 20));
  const lines = (await s.ctl("list", "example.com")).out.trimEnd().split("\n").sort();
  assert.equal(lines, [`${a}\ttab\\there\tcreate\tnever\tdefault\t2027-01-15T08:00:00Z`, `${b}\tscoped\tread\t${iso}\t10/hour\tnever`].sort());
  // delete drops the key's last use too.
  assert.is((await s.ctl("delete", "example.com", a)).code, 0);
  assert.not.ok((await used.all()).has(a));
});

test("last use is written at most once per minute per key", async () => {
  const s = await setup();
  const module = await s.rt.modules.load("example.com", "invites_api");
  const used = keyUsage(module);
  const stored = async () => (await used.all()).get("k1");
  const settle = () => new Promise((r) => setTimeout(r, 100));
  used.touch("k1", 1000);
  await settle();
  assert.is(await stored(), 1000);
  used.touch("k1", 1000 + USAGE_PRECISION - 1);
  await settle();
  assert.is(await stored(), 1000, "no write within the minute");
  used.touch("k1", 1000 + USAGE_PRECISION);
  await settle();
  assert.is(await stored(), 1000 + USAGE_PRECISION);
});

test("rotate: same id, new secret; the old one works during the grace period, then is refused", async () => {
  const s = await setup('invites_api_rotation_grace = "2h"\n');
  const old = (await s.ctl("create", "example.com", "rot", "--scope", "read")).out.trim();
  const id = old.split("/")[0]!;
  const t0 = nowS();
  const r = await s.ctl("rotate", "example.com", id);
  assert.is(r.code, 0, r.out);
  const fresh = r.out.trim();
  assert.match(r.out, KEY);
  assert.is(fresh.split("/")[0], id);
  assert.is.not(fresh, old);
  const rec = (await s.record(id))!;
  assert.equal(rec.scopes, ["read"], "scopes kept");
  const store = await s.rt.storage.open("example.com", "invite_api_keys", "map");
  const at = (key: string, t: number) => authorize(store, bearer(key), "read", t).then((x) => (x.ok ? "ok" : x.reason));
  assert.is(await at(fresh, t0), "ok");
  assert.is(await at(old, t0 + 7200 - 2), "ok", "old secret within the grace");
  assert.is(await at(old, t0 + 7200 + 2), "unknown", "old secret after the grace");
  assert.is(await at(fresh, t0 + 7200 + 2), "ok");
  // Rotating again ends the earlier grace at once.
  const third = (await s.ctl("rotate", "example.com", id)).out.trim();
  assert.is(await at(old, t0 + 1), "unknown");
  assert.is(await at(fresh, t0 + 1), "ok");
  assert.is(await at(third, t0 + 1), "ok");
});

test("rotate: unknown id is 'Error: key not found' (exit 1); grace 0 refuses the old secret at once", async () => {
  const s = await setup("invites_api_rotation_grace = 0\n");
  for (const args of [["rotate", "example.com", "nosuchkeyid"], ["rotate", "example.com"]]) {
    const r = await s.ctl(...args);
    assert.equal([r.code, r.out], [1, "Error: key not found\n"]);
  }
  const old = (await s.ctl("create", "example.com")).out.trim();
  const fresh = (await s.ctl("rotate", "example.com", old.split("/")[0]!)).out.trim();
  const store = await s.rt.storage.open("example.com", "invite_api_keys", "map");
  assert.is((await authorize(store, bearer(old), "create")).ok, false);
  assert.is((await authorize(store, bearer(fresh), "create")).ok, true);
  const bad = await setup('invites_api_rotation_grace = "whenever"\n');
  const k = (await bad.ctl("create", "example.com")).out.trim();
  const r = await bad.ctl("rotate", "example.com", k.split("/")[0]!);
  assert.is(r.code, 1);
  assert.match(r.out, /^Error: invites_api_rotation_grace must be a number of seconds or a duration/);
});

test.run();
