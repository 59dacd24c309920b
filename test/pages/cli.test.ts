/**
 * `prosodyctl mod_invites generate` with mod_invites_page enabled (the built host: run
 * `npm run build` first, as scripts/run-tests.mjs does). As in golden/10-cli-*.txt and
 * golden/60-external-url-variant.txt: without an `invites_page` template the CLI prints the xmpp:
 * URI (even with http_external_url), with one it prints the rendered template. The invite made by
 * the CLI then opens on the running server's page (shared SQLite storage).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl } from "../helpers/cli.js";
import { goldenFile, parseCliTranscript } from "../helpers/golden.js";
import { startPages, text, type PagesServer } from "./_helpers.js";
import { skip } from "../helpers/skip.js";

const BUILT = resolve(import.meta.dirname, "../../dist/plugins/mod_invites_page/mod_invites_page.js");
const TOKEN = "[A-Za-z0-9_-]{24}";
const PAGE_MODULES = `modules_enabled = { "invites", "invites_api", "invites_page", "register_apps", "http" }`;

let srv: PagesServer;

test.before(async () => {
  srv = await startPages(`
run_as_root = true
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
${PAGE_MODULES}
VirtualHost "example.org"
${PAGE_MODULES}
invites_page = "https://invite.example.net/{host}/#{invite.token}"
VirtualHost "ext.example"
${PAGE_MODULES}
http_external_url = "https://chat.example.com/xmpp/"
VirtualHost "external.example"
modules_enabled = { "invites", "invites_page", "http" }
invites_page_external = true
`);
});

test.after(async () => {
  await srv?.rt.stop();
});

const generate = async (...args: string[]) => {
  const r = await prosodyctl(["--config", srv.config, "mod_invites", "generate", ...args], { cwd: srv.dir });
  assert.is(r.stderr, "", `stderr of generate ${args.join(" ")}`);
  assert.is(r.code, 0, r.stdout);
  return r.stdout;
};

test("the host is built", () => {
  assert.ok(existsSync(BUILT), "dist/ is missing mod_invites_page: run `npm run build` first");
});

test("no invites_page template: the xmpp: URI, also with http_external_url or invites_page_external", async () => {
  assert.match(await generate("example.com"), new RegExp(`^xmpp:example\\.com\\?register;preauth=${TOKEN}\\n$`));
  assert.match(await generate("example.com", "--reset", "alice"), new RegExp(`^xmpp:alice@example\\.com\\?register;preauth=${TOKEN}\\n$`));
  assert.match(await generate("ext.example"), new RegExp(`^xmpp:ext\\.example\\?register;preauth=${TOKEN}\\n$`));
  assert.match(await generate("external.example"), new RegExp(`^xmpp:external\\.example\\?register;preauth=${TOKEN}\\n$`));
});

test("with an invites_page template: the rendered template (also for --reset and --admin)", async () => {
  assert.match(await generate("example.org"), new RegExp(`^https://invite\\.example\\.net/example\\.org/#${TOKEN}\\n$`));
  assert.match(await generate("example.org", "--reset", "alice"), new RegExp(`^https://invite\\.example\\.net/example\\.org/#${TOKEN}\\n$`));
  assert.match(await generate("example.org", "--admin"), new RegExp(`^https://invite\\.example\\.net/example\\.org/#${TOKEN}\\n$`));
});

test("golden 60: the same output shapes as Prosody's prosodyctl", async (ctx) => {
  const golden = goldenFile("60-external-url-variant.txt");
  if (!golden) return skip(ctx, "shared/spec/golden not found");
  const runs = parseCliTranscript(golden).filter((r) => r.argv.includes("generate"));
  assert.is(runs.length, 3);
  const shape = (s: string) => s.replace(/[A-Za-z0-9_-]{24}\n$/, "<tok>\n");
  assert.is(shape(await generate("ext.example")).replace("ext.example", "example.com"), shape(runs[0]!.stdout));
  assert.is(shape(await generate("ext.example")).replace("ext.example", "example.com"), shape(runs[1]!.stdout));
  assert.is(shape(await generate("example.org")).replace("example.org", "example.com"), shape(runs[2]!.stdout));
});

test("an invite made by prosodyctl is stored with its landing_page and opens on the server", async () => {
  const out = (await generate("example.org")).trim();
  const token = out.split("#")[1]!;
  const store = await srv.rt.storage.open("example.org", "invite_token", "map");
  const record = (await store.get(null, token)) as Record<string, unknown>;
  assert.is(record.landing_page, out);
  const page = (await srv.get(`/invites_page?${token}`, { host: "example.org" })).body.toString();
  assert.is(text(page, "h1"), "Invite to example.org");
  assert.match(page, `preauth=${token}`);

  const uri = (await generate("example.com")).trim();
  const plain = (await srv.rt.storage.open("example.com", "invite_token", "map").then((s) => s.get(null, uri.split("preauth=")[1]!))) as Record<string, unknown>;
  assert.is(plain.landing_page, undefined, "no landing page was computed by the CLI");
});

test.run();
