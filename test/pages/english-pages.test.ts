/**
 * The English pages stay byte for byte what they were before the pages were translated: every
 * landing, setup, register, success and error page (requests without `lang` or Accept-Language)
 * is compared with test/pages/fixtures/english-pages.txt, captured from the untranslated code.
 * Tokens, the port and the QR code's SVG (which draws the token) are replaced by placeholders.
 * `UPDATE_FIXTURES=1` rewrites the file (only when a change to the English text is intended).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { rawRequest } from "../helpers/http.js";
import { startPages, type PagesServer } from "./_helpers.js";

const FIXTURE = join(import.meta.dirname, "fixtures", "english-pages.txt");

let srv: PagesServer;
let invites: InvitesApi;
const tokens: string[] = [];

test.before(async () => {
  srv = await startPages(`
storage = "memory"
-- Many form posts from 127.0.0.1: the per-address limit is tested elsewhere (api-limits).
register_web_rate_per_ip = false
VirtualHost "example.com"
site_name = "Example <Chat> & \\"Friends\\""
webchat_url = "https://chat.example.com/"
password_policy = { length = 10 }
modules_enabled = { "invites", "invites_page", "register_apps", "invites_register", "invites_register_web", "password_policy", "http", "auth_internal_hashed" }
`);
  invites = srv.exports<InvitesApi>("example.com", "invites");
});

test.after(async () => {
  await srv?.rt.stop();
});

async function token(create: () => Promise<readonly [{ token: string } | undefined, ...unknown[]]>): Promise<string> {
  const [invite] = await create();
  tokens.push(invite!.token);
  return invite!.token;
}

function normalise(label: string, status: number, body: string): string {
  let out = body.replace(/<svg\b[\s\S]*?<\/svg>\n?/g, "<svg>QR</svg>").replaceAll(String(srv.port), "PORT");
  tokens.forEach((t, i) => (out = out.replaceAll(t, `TOKEN${i}`)));
  return `==== ${label} (${status})\n${out}\n`;
}

function post(path: string, form: Record<string, string>) {
  const body = new URLSearchParams(form).toString();
  const head = `POST ${path} HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  return rawRequest(srv.port, head + body);
}

test("the English pages are byte-identical to the untranslated ones", async () => {
  const plain = await token(() => invites.createAccount());
  const invited = await token(() => invites.createContact("alice", true));
  const bound = await token(() => invites.createAccount("bob"));
  const reset = await token(() => invites.createAccountReset("carol"));
  await srv.exports("example.com", "auth_internal_hashed").createUser("carol", "old password 123");
  const pages: string[] = [];
  const get = async (label: string, path: string) => {
    const r = await srv.get(path);
    pages.push(normalise(label, r.status, r.body.toString("utf8")));
  };
  const submit = async (label: string, path: string, form: Record<string, string>) => {
    const r = await post(path, form);
    pages.push(normalise(label, r.status, r.body.toString("utf8")));
  };
  await get("landing", `/invites_page?${plain}`);
  await get("landing with inviter", `/invites_page?${invited}`);
  await get("landing, invalid token", `/invites_page?nosuchtoken`);
  await get("setup page", `/invites_page/setup/conversations?${plain}`);
  await get("setup page with inviter", `/invites_page/setup/dino?${invited}`);
  await get("setup page, unknown app", `/invites_page/setup/no-such-app?${plain}`);
  await get("register form", `/register?t=${plain}`);
  await get("register form, preauth app", `/register?t=${plain}&c=conversations`);
  await get("register form, app without preauth", `/register?t=${plain}&c=beagle-im`);
  await get("register form, bound username", `/register?t=${bound}`);
  await get("register form, reset", `/register?t=${reset}`);
  await submit("register: empty fields", `/register?t=${plain}`, { token: plain, user: "", password: "" });
  await submit("register: invalid username", `/register?t=${plain}`, { token: plain, user: "a b@c", password: "long enough password" });
  await submit("register: short password", `/register?t=${plain}&c=dino`, { token: plain, user: "dave", password: "short", app_id: "dino" });
  await submit("register: username taken", `/register?t=${plain}`, { token: plain, user: "carol", password: "long enough password" });
  await submit("register: wrong bound username", `/register?t=${bound}`, { token: bound, user: "eve", password: "long enough password" });
  await submit("register: reset of another account", `/register?t=${reset}`, { token: reset, user: "dave", password: "long enough password" });
  await submit("register: success with app", `/register?t=${plain}&c=beagle-im`, { token: plain, user: "dave", password: "long enough password", app_id: "beagle-im" });
  await submit("register: success without app", `/register?t=${invited}`, { token: invited, user: "frank", password: "long enough password" });
  await submit("register: password reset", `/register?t=${reset}`, { token: reset, user: "carol", password: "a new long password" });
  const again = await token(() => invites.createAccount());
  const veto = (e: Record<string, unknown>) => {
    if (e.username === "vetoed") (e.allowed = false), (e.reason = "Not <today>");
    if (e.username === "vetoed2") e.allowed = false;
    return undefined;
  };
  srv.rt.eventsFor("example.com").hook("user-registering", veto, 10);
  await submit("register: vetoed", `/register?t=${again}`, { token: again, user: "vetoed", password: "long enough password" });
  await submit("register: vetoed without a reason", `/register?t=${again}`, { token: again, user: "vetoed2", password: "long enough password" });
  srv.rt.eventsFor("example.com").unhook("user-registering", veto);
  const all = pages.join("");
  if (process.env.UPDATE_FIXTURES) writeFileSync(FIXTURE, all);
  const want = readFileSync(FIXTURE, "utf8");
  const a = want.split("\n==== ");
  const b = all.split("\n==== ");
  for (let i = 0; i < Math.max(a.length, b.length); i++) assert.fixture(b[i] ?? "", a[i] ?? "");
  assert.is(all, want);
});

test.run();
