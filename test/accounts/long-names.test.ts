/**
 * Issue 11 item 7 (and the length part of item 6): long usernames and passwords, on `internal`
 * storage, through real processes: our server (`prosodyctl start`) answering the web form over
 * HTTP, and our `prosodyctl adduser`. Prosody's own limit (`<name>.dat~` must fit in 255 bytes, so
 * an encoded name of 250 bytes) is shown with real `prosodyctl` when Prosody is installed.
 *
 * Everything Prosody can store, we store (our temporary file name never is the limit); anything
 * longer gets the form again with a clear message, never a 500, and nothing is written.
 * Needs `npm run build` first (scripts/run-tests.mjs does it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { PROSODYCTL, prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";
import { createInstance, prosodyMissing } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

const BUILT = existsSync(resolve(import.meta.dirname, "../../dist/cli.js"));
const PASSWORD = "long names 1234";

interface Ctx {
  dir: string;
  config: string;
  port: number;
  server?: ChildProcess;
}
const web = suite<Ctx>("long names: web form and prosodyctl on internal storage", { dir: "", config: "", port: 0 });

web.before(async (ctx) => {
  if (!BUILT) return;
  ctx.port = await freePort();
  Object.assign(
    ctx,
    tempConfig(`
data_path = "$DIR/data"
http_ports = { ${ctx.port} }
http_interfaces = { "127.0.0.1" }
storage = "internal"
-- Many forms from one address; the form's rate limit has its own test (invites/api-limits).
register_web_rate_per_ip = false
VirtualHost "example.com"
modules_enabled = { "invites", "invites_register", "invites_register_web", "http" }
`),
  );
  ctx.server = spawn(process.execPath, [PROSODYCTL, "--config", ctx.config, "--quiet", "start"], { cwd: ctx.dir, stdio: "ignore" });
  for (let i = 0; ; i++) {
    try {
      await rawRequest(ctx.port, "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", { timeoutMs: 500 });
      break;
    } catch (err) {
      if (i > 150) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

web.after(async (ctx) => {
  const child = ctx.server;
  if (!child || child.exitCode !== null) return;
  const done = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await done;
});


async function newToken(ctx: Ctx): Promise<string> {
  const r = await prosodyctl(["--config", ctx.config, "mod_invites", "generate", "example.com"], { cwd: ctx.dir });
  assert.is(r.code, 0, r.stdout + r.stderr);
  return /preauth=([A-Za-z0-9_-]+)/.exec(r.stdout)![1]!;
}

function register(ctx: Ctx, token: string, user: string, password = PASSWORD): Promise<RawResponse> {
  const body = new URLSearchParams({ user, password, token }).toString();
  return rawRequest(
    ctx.port,
    `POST /register?t=${token} HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    { timeoutMs: 20_000 },
  );
}

const alertOf = (r: RawResponse) => /<div class="alert alert-warning"[^>]*>([^<]*)<\/div>/.exec(r.body.toString("utf8"))?.[1];
const accountsDir = (ctx: Ctx) => join(ctx.dir, "data", "example%2ecom", "accounts");
const accountFiles = (ctx: Ctx) => (existsSync(accountsDir(ctx)) ? readdirSync(accountsDir(ctx)) : []);

web("a name of 250 encoded bytes registers (ASCII and UTF-8), and no temporary file is left", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  // 250 bytes, and 41 × "é" (6 bytes each once encoded: %c3%a9) + 4 letters = 250 bytes encoded.
  for (const user of ["a".repeat(250), "é".repeat(41) + "abcd"]) {
    const r = await register(ctx, await newToken(ctx), user);
    assert.is(r.status, 200, `${user.length}: status`);
    assert.match(r.body.toString("utf8"), "Congratulations!", `${user.length} chars`);
  }
  const files = accountFiles(ctx);
  assert.ok(files.includes("a".repeat(250) + ".dat"), "the 250-byte account file");
  assert.ok(files.includes("%c3%a9".repeat(41) + "abcd.dat"), "the encoded UTF-8 account file");
  assert.equal(files.filter((f) => f.startsWith(".")), [], "no temporary file is left");
});

web("longer names get the form again with 'This username is too long.' (never a 500), nothing is stored", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  const before = accountFiles(ctx).sort();
  const token = await newToken(ctx);
  const tooLong = [
    "a".repeat(251), // one byte over Prosody's limit
    "é".repeat(41) + "abcde", // 251 bytes encoded
    "b".repeat(300), // the reported 500
    "ü".repeat(200), // 400 bytes, 1200 encoded
    "c".repeat(1023), // nodeprep's maximum
    "d".repeat(1024), // one byte over nodeprep's
    "e".repeat(15_000), // just under /register's 16 KiB body limit with the other fields
  ];
  for (const user of tooLong) {
    const r = await register(ctx, token, user);
    assert.is(r.status, 200, `${user.length}: status`);
    assert.is(alertOf(r), "This username is too long.", `${user.length} chars`);
  }
  // Over the route's body limit: refused before the body is read (413), never a 500.
  const huge = await register(ctx, token, "e".repeat(20_000));
  assert.is(huge.status, 413, "a form body over /register's limit");
  assert.equal(accountFiles(ctx).sort(), before, "no account (and no temporary file) was written");
  // The invite was not used up by the refusals.
  const ok = await register(ctx, token, "short");
  assert.match(ok.body.toString("utf8"), "Congratulations!");
});

web("passwords: 1023 bytes register, 1024 bytes and more get 'This password is too long'", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  const ok = await register(ctx, await newToken(ctx), "pw1023", "p".repeat(1022) + "1");
  assert.match(ok.body.toString("utf8"), "Congratulations!");
  const token = await newToken(ctx);
  for (const password of ["p".repeat(1024), "ü".repeat(512), "q".repeat(15_000)]) {
    const r = await register(ctx, token, "pwlong", password);
    assert.is(r.status, 200);
    assert.is(alertOf(r), "This password is too long (at most 1023 bytes).", `${Buffer.byteLength(password)} bytes`);
  }
  assert.is((await register(ctx, token, "pwlong", "q".repeat(100_000))).status, 413, "a password over /register's body limit");
  assert.not.ok(accountFiles(ctx).includes("pwlong.dat"));
});

web("prosodyctl adduser: 250 bytes encoded is stored, 251 gets a clear message and exit 1; so does a 1024-byte password", async (ctx) => {
  if (!BUILT) return skip(ctx, "run npm run build first");
  const add = (user: string, password = PASSWORD) =>
    prosodyctl(["--config", ctx.config, "adduser", `${user}@example.com`], { cwd: ctx.dir, input: `${password}\n${password}\n` });
  const fits = await add("f".repeat(250));
  assert.is(fits.code, 0, fits.stdout + fits.stderr);
  assert.ok(accountFiles(ctx).includes("f".repeat(250) + ".dat"));
  const over = await add("g".repeat(251));
  assert.is(over.code, 1);
  assert.match(over.stdout, "The given username is too long to be stored");
  assert.is(over.stderr, "");
  const longPassword = await add("h", "p".repeat(1024));
  assert.is(longPassword.code, 1);
  assert.match(longPassword.stdout, "The password is too long (at most 1023 bytes)");
  assert.not.ok(accountFiles(ctx).some((f) => f.startsWith("g") || f === "h.dat" || f.startsWith(".")));
});

web.run();

// --- the same boundary on real Prosody ---

const missing = prosodyMissing();
const real = suite("long names: real Prosody 0.12 has the same limit");

real("real prosodyctl stores 250 bytes encoded and not 251; it updates the 250-byte account we created", async (ctx) => {
  if (missing || !BUILT) return skip(ctx, missing ?? "run npm run build first");
  const inst = await createInstance("internal");
  try {
    const input = `${PASSWORD}\n${PASSWORD}\n`;
    const files = () => readdirSync(join(inst.dir, "data", "example%2ecom", "accounts"));
    const theirs250 = inst.realCtl(["adduser", `${"r".repeat(250)}@example.com`], input);
    assert.is(theirs250.code, 0, theirs250.stdout + theirs250.stderr);
    const theirs251 = inst.realCtl(["adduser", `${"r".repeat(251)}@example.com`], input);
    assert.match(theirs251.stdout + theirs251.stderr, "Error saving to storage");
    assert.equal(files().filter((f) => f.startsWith("r")), ["r".repeat(250) + ".dat"]);

    const ours = (user: string) => prosodyctl(["--config", inst.config, "adduser", `${user}@example.com`], { cwd: inst.dir, input });
    const ours250 = await ours("o".repeat(250));
    assert.is(ours250.code, 0, ours250.stdout + ours250.stderr);
    const ours251 = await ours("o".repeat(251));
    assert.is(ours251.code, 1);
    const passwd = inst.realCtl(["passwd", `${"o".repeat(250)}@example.com`], "another one 99\nanother one 99\n");
    assert.is(passwd.code, 0, passwd.stdout + passwd.stderr);
    assert.not.match(passwd.stdout, "does not exist");
    assert.equal(files().filter((f) => f.startsWith("o")), ["o".repeat(250) + ".dat"]);
  } finally {
    await inst.cleanup();
  }
});

real.run();
