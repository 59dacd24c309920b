/**
 * Page titles and main headings as Prosody's (mod_invites_page / mod_invites_register_web, Debian
 * prosody-modules 2023-02): compared with the golden captures of the real pages (P09, P10, P11,
 * P12, R01, R17) and, for the registration-error page (no golden capture: Prosody shows it only
 * when a user-registering handler vetoes or the account cannot be created), with Prosody's own
 * template html/register_error.html with {site_name} filled in.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { GOLDEN_DIR } from "../helpers/golden.js";
import { rawRequest, type RawResponse } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";
import { startPages, text, unescapeHtml, type PagesServer } from "./_helpers.js";

const REGISTER_ERROR_TEMPLATE = "/usr/lib/prosody/modules/mod_invites_register_web/html/register_error.html";

let srv: PagesServer;
let invites: InvitesApi;

test.before(async () => {
  srv = await startPages(`
storage = "memory"
VirtualHost "example.com"
modules_enabled = { "invites", "invites_page", "register_apps", "invites_register", "invites_register_web", "http" }
`);
  invites = srv.exports<InvitesApi>("example.com", "invites");
});
test.after(async () => {
  await srv?.rt.stop();
});

/** <title> and the first <h1>, whitespace collapsed, entities and Prosody's trailing <br/> removed. */
function titles(html: string): { title: string | undefined; h1: string | undefined } {
  const clean = (s: string | undefined) => (s === undefined ? undefined : unescapeHtml(s.replace(/<br\s*\/?>/g, "").replace(/<[^>]+>/g, "")).replace(/\s+/g, " ").trim());
  const h1 = /<h1[^>]*>([\s\S]*?)<\/h1>/.exec(html)?.[1];
  return { title: clean(text(html, "title")), h1: clean(h1) };
}

function golden(name: string): string | undefined {
  const file = GOLDEN_DIR ? join(GOLDEN_DIR, "html", name) : undefined;
  return file && existsSync(file) ? readFileSync(file, "utf8") : undefined;
}

async function token(): Promise<string> {
  const [invite, err] = await invites.createAccount();
  assert.ok(invite, String(err));
  return invite!.token;
}

const post = (fields: Record<string, string>, target: string): Promise<RawResponse> => {
  const body = new URLSearchParams(fields).toString();
  return rawRequest(srv.port, `POST ${target} HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
};

for (const [id, file, path, sameH1] of [
  ["P09", "internal-P09-setup-siskin.html", (t: string) => `/invites_page/setup/siskin-im?${t}`, true],
  ["P10", "internal-P10-setup-gajim.html", (t: string) => `/invites_page/setup/gajim?${t}`, true],
  // Our unknown-app page is a deliberate 404 with its own heading; its title is Prosody's.
  ["P11", "internal-P11-setup-unknown.html", (t: string) => `/invites_page/setup/nosuchapp?${t}`, false],
  ["P12", "internal-P12-setup-badtoken.html", () => `/invites_page/setup/siskin-im?badtoken`, true],
  ["R01", "internal-R01-form.html", (t: string) => `/register?t=${t}`, true],
] as const) {
  test(`${id}: title${sameH1 ? " and heading" : ""} as Prosody's page`, async (ctx) => {
    const g = golden(file);
    if (!g) return skip(ctx, "shared/spec/golden/html not found");
    const ours = titles((await srv.get(path(await token()))).body.toString());
    const theirs = titles(g);
    assert.is(ours.title, theirs.title);
    if (sameH1) assert.is(ours.h1, theirs.h1);
  });
}

test("R17: the success page's title and heading as Prosody's", async (ctx) => {
  const g = golden("internal-R17-success.html");
  if (!g) return skip(ctx, "shared/spec/golden/html not found");
  const t = await token();
  const r = await post({ user: "dave", password: "goodpassword1", token: t }, `/register?t=${t}`);
  assert.match(r.body.toString(), "Congratulations!");
  assert.equal(titles(r.body.toString()), titles(g));
});

test("registration-error page: title and heading of Prosody's register_error.html", async (ctx) => {
  if (!existsSync(REGISTER_ERROR_TEMPLATE)) return skip(ctx, "prosody-modules (mod_invites_register_web) not installed");
  const theirs = titles(readFileSync(REGISTER_ERROR_TEMPLATE, "utf8").replaceAll("{site_name}", "example.com"));
  assert.is(theirs.title, "Invite to example.com");
  const unhook = srv.rt.eventsFor("example.com").hook("user-registering", (e: { allowed: boolean; reason?: string }) => {
    e.allowed = false;
    e.reason = "Not today.";
  });
  try {
    const t = await token();
    const r = await post({ user: "erin", password: "goodpassword1", token: t }, `/register?t=${t}`);
    const page = r.body.toString();
    assert.match(page, "Registration error");
    assert.match(page, "Not today.");
    assert.equal(titles(page), theirs);
  } finally {
    unhook();
  }
});

test.run();
