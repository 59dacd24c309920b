/**
 * Options of mod_invites_page and mod_register_apps, on one server with a host per setting:
 * site_apps / site_apps_show / site_apps_hide, site-app-provider items, site_name, the
 * invites_page and invites_registration_page templates, invites_page_external, and the
 * http_external_url variant of golden/60-external-url-variant.txt (plus the no-store/no-referrer/
 * nosniff/anti-framing headers we add to the landing page, README "Differences").
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createKey } from "../../plugins/mod_invites_api/keys.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { urlencode } from "../../src/util/interpolation.js";
import { assertTokenHeaders, goldenFile, withTokenHeaders } from "../helpers/golden.js";
import { attrs, header, headerNames, linksLabelled, parsePagesTranscript, startPages, text, type PagesServer } from "./_helpers.js";

const MODULES = `modules_enabled = { "invites", "invites_page", "register_apps", "http" }`;

let srv: PagesServer;
let ext: PagesServer;

test.before(async () => {
  srv = await startPages(`
storage = "memory"
VirtualHost "custom.example"
${MODULES}
site_name = "Custom Chat"
site_apps = {
  { name = "Web Chat", text = "In your <browser>.", image = "https://cdn.example/web.png", link = "https://chat.custom.example/", platforms = { "Web" }, supports_preauth_uri = true };
  { id = "mine", name = "My App", platforms = { "Windows Phone", "Haiku R1" }, magic_link_format = "https://mine.example/join?u={invite.uri}&t={invite.token}&h={base_url}&r={app.link|noscheme}", link = "myapp:open", select_text = "Get My App" };
  { name = "Plain", image = "assets/logos/dino.svg" };
  { name = "Plain", text = "a duplicate id: dropped" };
  { name = "No Logo", download = { text = "Fetch it <here>:", buttons = { { image = "https://badge.example/b.svg", url = "https://get.example/", alttext = "Badge" }, { url = "https://other.example/" } } } };
  "not a table";
}

VirtualHost "show.example"
${MODULES}
site_apps_show = { "dino", "gajim", "nosuch" }

VirtualHost "hide.example"
${MODULES}
site_apps_hide = { "conversations", "monal" }

VirtualHost "tpl.example"
${MODULES}
invites_page = "https://invite.example.net/{host}/#{invite.token}"
invites_registration_page = "https://register.example/{invite.token}?app={app.id}&site={invite.site_name}"

VirtualHost "external.example"
modules_enabled = { "invites", "invites_page", "http" }
invites_page_external = true
invites_page = "https://portal.example/i/{invite.token}?h={host}"

VirtualHost "bare-external.example"
modules_enabled = { "invites", "invites_page", "http" }
invites_page_external = true

VirtualHost "paths.example"
${MODULES}
http_paths = { invites_page = "/join", register_apps = "/apps" }
`);
  ext = await startPages(`
storage = "memory"
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "invites_page", "register_apps", "http" }
http_external_url = "https://chat.example.com/xmpp/"
`);
});

test.after(async () => {
  await srv?.rt.stop();
  await ext?.rt.stop();
});

async function invite(s: PagesServer, host: string) {
  const [i] = await s.exports<InvitesApi>(host, "invites").createAccount();
  return i!;
}

const appNames = (page: string) => [...page.matchAll(/<h3 class="app-name">([^<]*)<\/h3>/g)].map((m) => m[1]);

test("site_apps replaces the list: ids, first wins, escaping, classes, Select targets, site_name", async () => {
  const i = await invite(srv, "custom.example");
  const base = `http://custom.example:${srv.port}`;
  const r = await srv.get(`/invites_page?${i.token}`, { host: "custom.example" });
  assert.is(r.status, 200);
  const page = r.body.toString();
  assert.is(text(page, "title"), "Invite to Custom Chat");
  assert.equal(appNames(page), ["Web Chat", "My App", "Plain", "No Logo"]);
  assert.match(page, "In your &lt;browser&gt;.");
  assert.equal(attrs(page, "li", "class", (el) => el.includes("app-card")), [
    "app-card app-platform-web",
    "app-card app-platform-windows-phone app-platform-haiku-r1",
    "app-card",
    "app-card",
  ]);
  const uri = `xmpp:custom.example?register;preauth=${i.token}`;
  assert.equal(linksLabelled(page, "Select"), [
    `${base}/invites_page/setup/web-chat?${i.token}`,
    `register?t=${i.token}&c=plain`,
    `register?t=${i.token}&c=no-logo`,
  ]);
  assert.equal(linksLabelled(page, "Get My App"), [
    `https://mine.example/join?u=${urlencode(uri)}&t=${i.token}&h=${urlencode(`${base}/invites_page`)}&r=open`,
  ]);
  assert.equal(attrs(page, "img", "src", (el) => el.includes("app-logo")), [
    "https://cdn.example/web.png",
    `${base}/register_apps/assets/logos/generic.svg`,
    `${base}/register_apps/assets/logos/dino.svg`,
    `${base}/register_apps/assets/logos/generic.svg`,
  ]);
  const shared = srv.exports("custom.example", "register_apps");
  assert.equal(shared.getApps().map((a: any) => a.id), ["web-chat", "mine", "plain", "no-logo"]);
  assert.is(shared.getApp("plain").image, `${base}/register_apps/assets/logos/dino.svg`);
});

test("site_apps: the setup page of a custom app, its download text and image/text buttons", async () => {
  const i = await invite(srv, "custom.example");
  const page = (await srv.get(`/invites_page/setup/no-logo?${i.token}`, { host: "custom.example" })).body.toString();
  assert.is(text(page, "h1"), "Join Custom Chat with No Logo");
  assert.match(page, "<p>Fetch it &lt;here&gt;:</p>");
  assert.equal(attrs(page, "img", "src", (el) => el.includes("badge.example")), ["https://badge.example/b.svg"]);
  assert.equal(attrs(page, "img", "alt", (el) => el.includes("badge.example")), ["Badge"]);
  assert.equal(linksLabelled(page, "Download No Logo"), ["https://other.example/"]);
  const web = (await srv.get(`/invites_page/setup/web-chat?${i.token}`, { host: "custom.example" })).body.toString();
  assert.equal(linksLabelled(web, "Get Web Chat"), ["https://chat.custom.example/"], "no download section: the app's link");
  assert.not.match(web, /\{[a-z_.]+\}/);
});

test("site_apps_show and site_apps_hide", async () => {
  const s = await invite(srv, "show.example");
  assert.equal(appNames((await srv.get(`/invites_page?${s.token}`, { host: "show.example" })).body.toString()), ["Dino", "Gajim"]);
  const h = await invite(srv, "hide.example");
  assert.equal(appNames((await srv.get(`/invites_page?${h.token}`, { host: "hide.example" })).body.toString()), [
    "yaxim",
    "Siskin IM",
    "Beagle IM",
    "Dino",
    "Gajim",
  ]);
  assert.is((await srv.get(`/invites_page/setup/monal?${h.token}`, { host: "hide.example" })).status, 404, "a hidden app has no setup page");
});

test("site-app-provider items: added at run time (first wins), removed with the item, filtered by show", async () => {
  const provider = srv.rt.modules.get("show.example", "invites_page")!;
  const item = { name: "Provided", platforms: ["Linux"], image: "assets/logos/generic.svg" };
  const dup = { id: "dino", name: "Another Dino" };
  provider.addItem("site-app-provider", item);
  provider.addItem("site-app-provider", dup);
  const apps = srv.exports("show.example", "register_apps");
  assert.equal(apps.getApps().map((a: any) => a.name), ["Dino", "Gajim"], "not in site_apps_show");

  const other = srv.rt.modules.get("hide.example", "invites_page")!;
  other.addItem("site-app-provider", item);
  other.addItem("site-app-provider", dup);
  const hidden = srv.exports("hide.example", "register_apps");
  assert.equal(hidden.getApps().map((a: any) => a.name), ["yaxim", "Siskin IM", "Beagle IM", "Dino", "Gajim", "Provided"]);
  assert.is(hidden.getApp("provided").image, `http://hide.example:${srv.port}/register_apps/assets/logos/generic.svg`);
  const h = await invite(srv, "hide.example");
  assert.equal(appNames((await srv.get(`/invites_page?${h.token}`, { host: "hide.example" })).body.toString()).at(-1), "Provided");
  other.removeItem("site-app-provider", item);
  assert.equal(hidden.getApps().map((a: any) => a.name), ["yaxim", "Siskin IM", "Beagle IM", "Dino", "Gajim"]);
  assert.is(item.image, "assets/logos/generic.svg", "the provider's own table is not modified");
});

test("invites_page and invites_registration_page templates", async () => {
  const i = await invite(srv, "tpl.example");
  assert.is(i.landing_page, `https://invite.example.net/tpl.example/#${i.token}`);
  const page = (await srv.get(`/invites_page?${i.token}`, { host: "tpl.example" })).body.toString();
  const selects = linksLabelled(page, "Select");
  assert.is(selects[3], `https://register.example/${i.token}?app=beagle-im&site=tpl.example`);
  assert.is(selects[2], `http://tpl.example:${srv.port}/invites_page/setup/siskin-im?${i.token}`, "preauth apps still use the setup page");
  // contact invites: allow_registration decides
  const api = srv.exports<InvitesApi>("tpl.example", "invites");
  assert.is((await api.createContact("bob", true))[0]!.landing_page?.startsWith("https://invite.example.net/tpl.example/#"), true);
  assert.is((await api.createContact("bob", false))[0]!.landing_page, undefined);
});

test("invites_page_external: landing_page only; nothing served, mod_register_apps not loaded", async () => {
  const i = await invite(srv, "external.example");
  assert.is(i.landing_page, `https://portal.example/i/${i.token}?h=external.example`);
  assert.is((await srv.get(`/invites_page?${i.token}`, { host: "external.example" })).status, 404);
  assert.is((await srv.get("/invites_page/static/invite.css", { host: "external.example" })).status, 404);
  assert.is(srv.rt.modules.get("external.example", "register_apps"), undefined);
  const b = await invite(srv, "bare-external.example");
  assert.is(b.landing_page, `https://bare-external.example/?${b.token}`, "default without a template");
});

test("http_paths moves the pages; every URL follows", async () => {
  const i = await invite(srv, "paths.example");
  const base = `http://paths.example:${srv.port}`;
  assert.is(i.landing_page, `${base}/join?${i.token}`);
  const page = (await srv.get(`/join?${i.token}`, { host: "paths.example" })).body.toString();
  assert.is(linksLabelled(page, "Select")[2], `${base}/join/setup/siskin-im?${i.token}`);
  assert.is(attrs(page, "img", "src", (el) => el.includes("app-logo"))[0], `${base}/apps/assets/logos/conversations.svg`);
  assert.is(attrs(page, "link", "href", (el) => el.includes("stylesheet"))[0], `${base}/join/static/invite.css`);
  assert.is((await srv.get("/apps/assets/logos/conversations.svg", { host: "paths.example" })).status, 200);
  assert.is((await srv.get("/join/static/invite.css", { host: "paths.example" })).status, 200);
});

test("unloading mod_register_apps empties the shared list (and takes the page module with it)", async () => {
  const shared = srv.rt.modules.get("show.example", "invites_page")!.shared<any>("register_apps/apps");
  assert.is(shared.list.length, 2);
  await srv.rt.modules.unload("show.example", "register_apps");
  assert.is(shared.list.length, 0);
  assert.is(shared.byId.size, 0);
  assert.is(srv.rt.modules.get("show.example", "invites_page"), undefined);
  assert.is((await srv.get("/invites_page?x", { host: "show.example" })).status, 404);
});

test("http_external_url (golden 60): API Location, page URLs, header set", async () => {
  const key = await createKey(ext.rt.modules.get("example.com", "invites_api")!, "ext");
  const api = await ext.get(`/invites_api?key=${key}`);
  assert.is(api.status, 201);
  assert.match(api.header("location")!, /^https:\/\/chat\.example\.com\/xmpp\/invites_page\?[A-Za-z0-9_-]{24}$/);
  const token = api.header("location")!.split("?")[1]!;
  const r = await ext.get(`/invites_page?${token}`);
  assertTokenHeaders(r.header, true, "landing page");
  const page = r.body.toString();
  const b = "https://chat.example.com/xmpp";
  assert.ok(attrs(page, "img", "src").includes(`${b}/invites_page/static/qr-logo.png`));
  assert.equal(attrs(page, "img", "src", (el) => el.includes("app-logo")).slice(0, 2), [
    `${b}/register_apps/assets/logos/conversations.svg`,
    `${b}/register_apps/assets/logos/yaxim.svg`,
  ]);
  const selects = linksLabelled(page, "Select");
  assert.is(selects[0], `https://play.google.com/store/apps/details?id=eu.siacs.conversations&referrer=xmpp%3aexample.com%3fregister%3bpreauth%3d${token}`);
  assert.is(selects[2], `${b}/invites_page/setup/siskin-im?${token}`);
  const golden = goldenFile("60-external-url-variant.txt");
  if (golden) {
    const landing = parsePagesTranscript(golden.toString("utf8").replace("### landing page", "### L01 landing page")).find((c) => c.id === "L01")!;
    assert.equal(headerNames(r.headers), withTokenHeaders(headerNames(landing.headers), true, true));
    assert.is(r.header("link"), header(landing.headers, "link")!.replace("0TfN6uBopJMDaM5d_2ILXInE", token));
  }
});

test.run();
