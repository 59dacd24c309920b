/**
 * mod_invites_page + mod_register_apps against golden/40-http-pages-internal.txt (Prosody 0.12.3 +
 * prosody-modules 2023-02): every P** (landing, setup, static) and A** (logos) exchange is replayed
 * and the status line, the header set (Date aside) and the headers that carry meaning are compared;
 * then the page contents: title, texts, the 7 apps in order with their Select targets, logos, the
 * register-manually link and the server-side QR code.
 *
 * Documented deviations (README "Differences from Prosody"):
 * - P11 setup page of an unknown app: 404 with our "Unknown app" page (Prosody: 200, raw placeholders);
 * - P13 static/qrcode.min.js: 404, the QR code is drawn on the server (Prosody serves a QR script);
 * - the pages are our own HTML (same URLs, links, classes and key texts; different markup and prose);
 * - every answer of the invites_page app (pages, static files, redirects) carries our added
 *   no-store/no-referrer/nosniff/anti-framing headers: checked by value, and checked absent from
 *   mod_register_apps' logos and from answers no app gives;
 * - the (translated) pages add Content-Language: en and Vary: Accept-Language.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createKey } from "../../plugins/mod_invites_api/keys.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { answeredByTokenApp, assertLanguageHeaders, assertTokenHeaders, GOLDEN_DIR, goldenFile, translatedPage, withTokenHeaders } from "../helpers/golden.js";
import { rawRequest } from "../helpers/http.js";
import {
  attrs,
  expectedMatrix,
  header,
  headerNames,
  linksLabelled,
  parsePagesTranscript,
  startPages,
  svgToMatrix,
  text,
  type PagesServer,
} from "./_helpers.js";
import { skip } from "../helpers/skip.js";

const transcript = goldenFile("40-http-pages-internal.txt");
const cases = transcript ? parsePagesTranscript(transcript.toString("utf8")).filter((c) => /^[PA]\d/.test(c.id)) : [];
const goldenHtml = (name: string) => (GOLDEN_DIR ? readFileSync(join(GOLDEN_DIR, "html", name), "utf8") : "");

const G_VALID = "RgC-rlkTGS2zCUPVng8RZ0Te";
const G_EXPIRED = "317zhR6O61nXRk2zsUwgzIrF";
const G_RESET = "2OT5153ltPNq5ZfrQ_cx2IVt";
const G_PORT = "15280";

/** Golden case → the status we answer instead (and the case whose headers we then match). */
const DEVIATIONS: Record<string, { status: number; like?: string }> = {
  "P11 setup page unknown app": { status: 404 },
  "P13 static qrcode.min.js": { status: 404, like: "P13 static nosuch.js" },
};
const MEANINGFUL = ["content-type", "connection", "access-control-allow-origin", "access-control-allow-headers", "access-control-max-age", "location"];
const APPS = ["Conversations", "yaxim", "Siskin IM", "Beagle IM", "Dino", "Gajim", "Monal"];

let srv: PagesServer;
let invites: InvitesApi;
let valid: string;
let expired: string;
let reset: string;

test.before(async () => {
  srv = await startPages(`
storage = "memory"
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "invites_page", "register_apps", "http" }
VirtualHost "example.org"
modules_enabled = { "http" }
`);
  invites = srv.exports<InvitesApi>("example.com", "invites");
  // P01: "Location from API"
  const key = await createKey(srv.rt.modules.get("example.com", "invites_api")!, "pages key");
  const api = await srv.get(`/invites_api?key=${key}`);
  assert.is(api.status, 201);
  const location = api.header("location")!;
  assert.match(location, new RegExp(`^http://example\\.com:${srv.port}/invites_page\\?[A-Za-z0-9_-]{24}$`));
  valid = location.split("?")[1]!;
  const [e] = await invites.createAccount();
  expired = e!.token;
  const store = await srv.rt.storage.open("example.com", "invite_token", "map");
  await store.set(null, expired, { ...((await store.get(null, expired)) as object), expires: 1000000000 } as any);
  const [r] = await invites.createAccountReset("alice");
  reset = r!.token;
});

test.after(async () => {
  await srv?.rt.stop();
});

const substitute = (s: string) => s.replaceAll(G_VALID, valid).replaceAll(G_EXPIRED, expired).replaceAll(G_RESET, reset).replaceAll(G_PORT, String(srv.port));

for (const c of cases) {
  const key = `${c.id} ${c.title}`;
  test(`golden ${key}`, async () => {
    const dev = DEVIATIONS[key];
    const ref = dev?.like ? cases.find((x) => `${x.id} ${x.title}` === dev.like)! : c;
    const head = c.request.map(substitute).join("\r\n") + "\r\n\r\n";
    const isHead = c.request[0]!.startsWith("HEAD ");
    const r = await rawRequest(srv.port, head, { head: isHead });
    const label = `${key}: got ${r.statusLine}\n${r.headers.map((h) => h.join(": ")).join("\n")}`;
    if (dev) assert.is(r.status, dev.status, label);
    else assert.is(r.statusLine, c.status, label);
    const target = c.request[0]!.split(" ")[1]!;
    const added = answeredByTokenApp(target, Number(ref.status.split(" ")[1]), ref.headers.map(([k]) => k));
    const translated = added && translatedPage(target, ref.headers);
    assert.equal(headerNames(r.headers), withTokenHeaders(headerNames(ref.headers), added, translated), label);
    assertTokenHeaders(r.header, added, label);
    assertLanguageHeaders(r.header, translated, label);
    for (const name of MEANINGFUL) {
      const want = header(ref.headers, name);
      if (want !== undefined) assert.is(r.header(name), substitute(want), `${label}\n(${name})`);
    }
    const methods = (v?: string) => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean).sort();
    const gm = header(ref.headers, "access-control-allow-methods");
    if (gm) assert.equal(methods(r.header("access-control-allow-methods")), methods(gm), label);
    const link = header(ref.headers, "link");
    if (link) assert.is(r.header("link"), substitute(link), label);
    if (!header(ref.headers, "content-type")) assert.is(r.header("content-length"), header(ref.headers, "content-length"), label);
    if (isHead) assert.is(r.body.length, 0);
    else if (r.header("content-length") !== undefined) assert.is(r.body.length, Number(r.header("content-length")));
  });
}

test("the transcript was found and has every landing/setup/static/logo case", (ctx) => {
  if (!transcript) return skip(ctx, "shared/spec/golden not found");
  assert.is(cases.filter((c) => c.id.startsWith("P")).length, 19);
  assert.is(cases.filter((c) => c.id.startsWith("A")).length, 7);
});

test("landing page: title, heading, texts, alternate link", async () => {
  const r = await srv.get(`/invites_page?${valid}`);
  const page = r.body.toString();
  const uri = `xmpp:example.com?register;preauth=${valid}`;
  assert.is(text(page, "title"), "Invite to example.com");
  assert.is(text(page, "h1"), "Invite to example.com");
  assert.is(r.header("link"), `<${uri}>; rel="alternate"`);
  assert.equal(attrs(page, "link", "href", (el) => /rel="alternate"/.test(el)), [uri]);
  assert.match(page, "You have been invited to chat on <strong>example.com</strong>");
  assert.not.match(page, "has invited you");
  assert.equal(linksLabelled(page, "register an account manually"), [`register?t=${valid}`]);
  assert.equal(linksLabelled(page, "view all apps"), ["#"]);
  // no placeholders left over
  assert.not.match(page, /\{[a-z_.]+\}/);
});

test("landing page: the 7 default apps in order, their platforms and Select targets as Prosody's page", async () => {
  const page = (await srv.get(`/invites_page?${valid}`)).body.toString();
  assert.equal(attrs(page, "h3", "class").length, 7);
  assert.equal([...page.matchAll(/<h3 class="app-name">([^<]*)<\/h3>/g)].map((m) => m[1]), APPS);
  const cards = attrs(page, "li", "class", (el) => el.includes("app-card"));
  assert.equal(cards, [
    "app-card app-platform-android",
    "app-card app-platform-android",
    "app-card app-platform-ios",
    "app-card app-platform-macos",
    "app-card app-platform-linux",
    "app-card app-platform-windows app-platform-linux",
    "app-card app-platform-ios",
  ]);
  const selects = linksLabelled(page, "Select");
  const base = `http://example.com:${srv.port}/invites_page`;
  const referrer = `xmpp%3aexample.com%3fregister%3bpreauth%3d${valid}`;
  assert.equal(selects, [
    `https://play.google.com/store/apps/details?id=eu.siacs.conversations&referrer=${referrer}`,
    `https://play.google.com/store/apps/details?id=org.yaxim.androidclient&referrer=${referrer}`,
    `${base}/setup/siskin-im?${valid}`,
    `register?t=${valid}&c=beagle-im`,
    `register?t=${valid}&c=dino`,
    `register?t=${valid}&c=gajim`,
    `${base}/setup/monal?${valid}`,
  ]);
  const golden = goldenHtml("internal-P01-landing-valid.html");
  if (golden) {
    assert.equal(selects, linksLabelled(golden, "Select").map((h) => h.replaceAll(G_VALID, valid).replaceAll(G_PORT, String(srv.port))));
    const logos = (html: string) => attrs(html, "img", "src").filter((s) => s.includes("/register_apps/"));
    assert.equal(logos(page), logos(golden).map((s) => s.replaceAll(G_PORT, String(srv.port))));
  }
});

test("landing page: every logo and static URL on it is served with its Content-Type", async () => {
  const page = (await srv.get(`/invites_page?${valid}`)).body.toString();
  const urls = [...attrs(page, "img", "src"), ...attrs(page, "script", "src"), ...attrs(page, "link", "href", (el) => el.includes("stylesheet"))];
  assert.ok(urls.length >= 11);
  for (const u of urls) {
    const m = new RegExp(`^http://example\\.com:${srv.port}(/.*)$`).exec(u);
    assert.ok(m, `absolute URL on our host: ${u}`);
    const r = await srv.get(m![1]!);
    assert.is(r.status, 200, u);
    const ext = u.split(".").pop()!;
    const type = { svg: "image/svg+xml", png: "image/png", js: "application/javascript", css: "text/css" }[ext];
    assert.is(r.header("content-type"), type, u);
    if (ext === "png") assert.equal([...r.body.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${u} is a PNG`);
    if (ext === "svg") assert.match(r.body.toString(), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, `${u} is an SVG`);
  }
});

test("landing page: the QR code is an inline SVG of the invite's xmpp: URI", async () => {
  const page = (await srv.get(`/invites_page?${valid}`)).body.toString();
  const svgs = [...page.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
  assert.is(svgs.length, 1);
  const uri = `xmpp:example.com?register;preauth=${valid}`;
  assert.equal(svgToMatrix(svgs[0]!), expectedMatrix(uri));
  assert.not.equal(svgToMatrix(svgs[0]!), expectedMatrix(`${uri}x`), "the comparison can fail");
  const { qrSvg } = await import("../../plugins/mod_invites_page/mod_invites_page.js");
  assert.is(svgs[0]! + "\n", await qrSvg(uri));
});

test("contact invite with registration: the inviter is named, the URI is the roster one", async () => {
  const [c] = await invites.createContact("alice", true);
  assert.is(c!.landing_page, `http://example.com:${srv.port}/invites_page?${c!.token}`);
  const r = await srv.get(`/invites_page?${c!.token}`);
  const page = r.body.toString();
  const uri = `xmpp:alice@example.com?roster;preauth=${c!.token};ibr=y`;
  assert.is(r.header("link"), `<${uri}>; rel="alternate"`);
  assert.match(page, "<strong>alice</strong> has invited you to chat on <strong>example.com</strong>");
  assert.is(
    linksLabelled(page, "Select")[0],
    `https://play.google.com/store/apps/details?id=eu.siacs.conversations&referrer=xmpp%3aalice%40example.com%3froster%3bpreauth%3d${c!.token}%3bibr%3dy`,
  );
  assert.equal(svgToMatrix(/<svg[\s\S]*?<\/svg>/.exec(page)![0]), expectedMatrix(uri));
});

test("contact-only invite: no landing page, and its token shows the invalid page", async () => {
  const [c] = await invites.createContact("alice", false);
  assert.is(c!.landing_page, undefined);
  const page = (await srv.get(`/invites_page?${c!.token}`)).body.toString();
  assert.match(page, "Invite expired");
});

test("password-reset invite: gets a landing page (as Prosody 0.12's module did); its page as golden R18", async () => {
  const [r] = await invites.createAccountReset("bob");
  assert.is(r!.landing_page, `http://example.com:${srv.port}/invites_page?${r!.token}`);
  const res = await srv.get(`/invites_page?${reset}`);
  assert.is(res.status, 200);
  assert.is(res.header("link"), `<xmpp:alice@example.com?register;preauth=${reset}>; rel="alternate"`);
  const golden = goldenHtml("internal-R18-landing-reset.html");
  if (golden) {
    assert.equal(
      linksLabelled(res.body.toString(), "Select"),
      linksLabelled(golden, "Select").map((h) => h.replaceAll(G_RESET, reset).replaceAll(G_PORT, String(srv.port))),
    );
  }
});

test("invalid page: unknown, expired, used, missing and extra-query tokens", async () => {
  const [used] = await invites.createAccount();
  assert.ok(await invites.use(used!.token));
  for (const q of ["?nosuchtoken", `?${expired}`, `?${used!.token}`, "", "?", `?${valid}&x=1`, `?${valid.slice(0, -1)}`]) {
    const r = await srv.get(`/invites_page${q}`);
    assert.is(r.status, 200, q);
    assert.is(r.header("link"), undefined, q);
    const page = r.body.toString();
    assert.is(text(page, "title"), "Invite to example.com", q);
    assert.is(text(page, "h1"), "Invite to example.com", q);
    assert.is(text(page, "h2"), "Invite expired", q);
    assert.match(page, "<p>Sorry, it looks like this invite code has expired!</p>", q);
    assert.equal(attrs(page, "img", "src"), [`http://example.com:${srv.port}/invites_page/static/illus-empty.svg`], q);
  }
});

test("setup page: Siskin IM (preauth) and Gajim; download buttons, the xmpp: link, the QR code", async () => {
  const uri = `xmpp:example.com?register;preauth=${valid}`;
  const r = await srv.get(`/invites_page/setup/siskin-im?${valid}`);
  assert.is(r.status, 200);
  const page = r.body.toString();
  assert.is(text(page, "h1"), "Join example.com with Siskin IM");
  assert.equal(linksLabelled(page, "Open the invite in Siskin IM"), [uri]);
  assert.equal(linksLabelled(page, "Download on the App Store"), ["https://apps.apple.com/us/app/siskin-im/id1153516838"]);
  assert.equal(attrs(page, "img", "src", (el) => el.includes("app-logo")), [`http://example.com:${srv.port}/register_apps/assets/logos/siskin-im.png`]);
  assert.equal(svgToMatrix(/<svg[\s\S]*?<\/svg>/.exec(page)![0]), expectedMatrix(uri));
  assert.not.match(page, /\{[a-z_.]+\}/);

  const g = (await srv.get(`/invites_page/setup/gajim?${valid}`)).body.toString();
  assert.is(text(g, "h1"), "Join example.com with Gajim");
  assert.equal(attrs(g, "div", "class", (el) => el.includes("app-card")), ["app-card single app-platform-windows app-platform-linux"]);
  assert.equal(linksLabelled(g, "Get Gajim"), ["https://gajim.org/download/"]);
});

test("setup page: bad token → invalid page (200); unknown app → 404 'Unknown app' (deviation)", async () => {
  const bad = await srv.get("/invites_page/setup/siskin-im?badtoken");
  assert.is(bad.status, 200);
  assert.match(bad.body.toString(), "Invite expired");
  const badBoth = await srv.get("/invites_page/setup/nosuchapp?badtoken");
  assert.is(badBoth.status, 200, "the token is checked first");
  const unknown = await srv.get(`/invites_page/setup/nosuchapp?${valid}`);
  assert.is(unknown.status, 404);
  const page = unknown.body.toString();
  assert.is(text(page, "h1"), "Unknown app");
  assert.match(page, "nosuchapp");
  assert.equal(linksLabelled(page, "Back to your invite"), [`http://example.com:${srv.port}/invites_page?${valid}`]);
  const escaped = await srv.get(`/invites_page/setup/%3Cb%3E?${valid}`);
  assert.match(escaped.body.toString(), "“&lt;b&gt;”");
});

test("static files: Etag/Last-Modified revalidation answers 304", async () => {
  const first = await srv.get("/invites_page/static/invite.js");
  const etag = first.header("etag")!;
  const modified = first.header("last-modified")!;
  assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.is((await srv.get("/invites_page/static/invite.js", { headers: { "If-None-Match": etag } })).status, 304);
  assert.is((await srv.get("/invites_page/static/invite.js", { headers: { "If-Modified-Since": modified } })).status, 304);
  assert.is((await srv.get("/invites_page/static/invite.js", { headers: { "If-None-Match": '"other"', "If-Modified-Since": modified } })).status, 200);
  const logo = await srv.get("/register_apps/assets/logos/dino.svg", { headers: { "If-None-Match": (await srv.get("/register_apps/assets/logos/dino.svg")).header("etag")! } });
  assert.is(logo.status, 304);
});

test("static and asset folders: traversal, sub-folders, dot segments", async () => {
  assert.is((await srv.get("/register_apps/assets/logos")).header("location"), "/register_apps/assets/logos/");
  assert.is((await srv.get("/register_apps/assets/logos")).status, 301);
  assert.is((await srv.get("/register_apps/assets/logos/")).status, 403);
  assert.is((await srv.get("/register_apps/assets/logos/./dino.svg")).status, 200);
  assert.is((await srv.get("/register_apps/assets/logos/../logos/dino.svg")).status, 200);
  assert.is((await srv.get("/register_apps/assets/../x")).status, 400);
  assert.is((await srv.get("/register_apps/assets/logos/%2e%2e/%2e%2e/x")).status, 400);
  assert.is((await srv.get("/register_apps/assets/logos/dino.svg/")).status, 403);
  assert.is((await srv.get("/register_apps/assets/logos/DINO.svg")).status, 404);
  assert.is((await srv.get("/invites_page/static/")).status, 403);
  assert.is((await srv.get("/invites_page/static/invite.css")).header("content-type"), "text/css");
});

test("the shared app list: array in order plus a map by id; exports", async () => {
  const shared = srv.rt.modules.get("example.com", "invites_page")!.shared<any>("register_apps/apps");
  assert.equal(shared.list.map((a: any) => a.id), ["conversations", "yaxim", "siskin-im", "beagle-im", "dino", "gajim", "monal"]);
  assert.is(shared.byId.get("monal").platforms[0], "iOS", "the first Monal (iOS) wins");
  assert.is(shared.byId.get("siskin-im").image, `http://example.com:${srv.port}/register_apps/assets/logos/siskin-im.png`);
  assert.is(shared.byId.get("conversations").magic_link_format, "{app.link!}&referrer={invite.uri}");
  assert.is(shared.byId.get("conversations")._source, "register_apps");
  const apps = srv.exports("example.com", "register_apps");
  assert.is(apps.getApps().length, 7);
  assert.is(apps.getApp("dino").name, "Dino");
  assert.is(apps.getApp("nosuch"), undefined);
});

test.run();
