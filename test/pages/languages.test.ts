/**
 * The translated pages over HTTP: the language chosen by `lang`, else Accept-Language, else
 * English; Content-Language, Vary and <html lang>; `lang` carried from the landing page to the
 * setup and register pages and through the form's POST and redirects; hostile `lang` values never
 * reflected; `site_name` and the texts of configured apps shown as configured in every language.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { rawRequest, type RawResponse } from "../helpers/http.js";
import { attrs, linksLabelled, startPages, text, type PagesServer } from "./_helpers.js";

let srv: PagesServer;
let invites: InvitesApi;

const SITE = "Café <Zürich>";

test.before(async () => {
  srv = await startPages(`
storage = "memory"
-- Many form posts from 127.0.0.1: the per-address limit is tested elsewhere (api-limits).
register_web_rate_per_ip = false
VirtualHost "example.com"
site_name = "${SITE}"
password_policy = { length = 10 }
site_apps = {
  { name = "Preauth App", text = "Configured description", select_text = "Configured select", supports_preauth_uri = true,
    download = { text = "Configured download text", buttons = { { text = "Configured button", url = "https://example.net/get" } } },
    setup = { text = "Configured setup text" } };
  { name = "Plain App", text = "Plain description" };
  { name = "Magic App", magic_link_format = "https://magic.example/{invite.token}" };
  { name = "Dino", text = "Configured Dino text", download = { buttons = { { text = "Configured Dino button", url = "https://dino.im/" } } } };
}
modules_enabled = { "invites", "invites_page", "register_apps", "invites_register", "invites_register_web", "password_policy", "http", "auth_internal_hashed" }
VirtualHost "builtin.example"
modules_enabled = { "invites", "invites_page", "register_apps", "invites_register", "invites_register_web", "http", "auth_internal_hashed" }
`);
  invites = srv.exports<InvitesApi>("example.com", "invites");
});

test.after(async () => {
  await srv?.rt.stop();
});

async function newToken(): Promise<string> {
  const [invite] = await invites.createAccount();
  return invite!.token;
}

const get = (path: string, acceptLanguage?: string) => srv.get(path, { headers: acceptLanguage === undefined ? {} : { "Accept-Language": acceptLanguage } });

function post(path: string, form: Record<string, string>, acceptLanguage?: string): Promise<RawResponse> {
  const body = new URLSearchParams(form).toString();
  const al = acceptLanguage ? `Accept-Language: ${acceptLanguage}\r\n` : "";
  return rawRequest(srv.port, `POST ${path} HTTP/1.1\r\nHost: example.com\r\n${al}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

const htmlLang = (r: RawResponse) => /<html lang="([^"]*)">/.exec(r.body.toString())?.[1];

function speaks(r: RawResponse, lang: string, label: string) {
  assert.is(r.header("content-language"), lang, `${label}: Content-Language`);
  assert.is(r.header("vary"), "Accept-Language", `${label}: Vary`);
  assert.is(htmlLang(r), lang, `${label}: <html lang>`);
}

test("landing page: lang parameter, then Accept-Language (q-values, region), else English", async () => {
  const token = await newToken();
  const cases: Array<[string, string | undefined, string, string]> = [
    [`?${token}`, undefined, "en", "Invite to Café <Zürich>"],
    [`?${token}&lang=de`, undefined, "de", "Einladung zu Café <Zürich>"],
    [`?${token}&lang=FR`, "de", "fr", "Invitation à Café <Zürich>"],
    [`?${token}&lang=es-419`, "de", "es", "Invitación a Café <Zürich>"],
    [`?${token}`, "es-MX,es;q=0.9", "es", "Invitación a Café <Zürich>"],
    [`?${token}`, "de-AT", "de", "Einladung zu Café <Zürich>"],
    [`?${token}`, "ja, fr;q=0.4, de;q=0.6", "de", "Einladung zu Café <Zürich>"],
    [`?${token}`, "ja, zh;q=0.5", "en", "Invite to Café <Zürich>"],
    [`?${token}&lang=xx`, "fr", "fr", "Invitation à Café <Zürich>"],
  ];
  for (const [query, al, lang, title] of cases) {
    const r = await get(`/invites_page${query}`, al);
    const label = `${query} ${al}`;
    assert.is(r.status, 200, label);
    speaks(r, lang, label);
    assert.is(text(r.body.toString(), "title"), title, label);
    assert.ok(r.header("link"), `${label}: a valid invite (the lang part is not part of the token)`);
  }
});

test("landing page in German: the texts, site_name and the configured app texts as configured", async () => {
  const token = await newToken();
  const page = (await get(`/invites_page?${token}&lang=de`)).body.toString();
  assert.match(page, "<h2>Wähle eine App</h2>");
  assert.match(page, "Du wurdest eingeladen, auf <strong>Café &lt;Zürich&gt;</strong> zu chatten.");
  assert.match(page, "Configured description");
  assert.match(page, "Plain description");
  assert.match(page, "Configured Dino text", "a configured app named like a built-in one keeps its text");
  assert.equal(linksLabelled(page, "Configured select").length, 1, "a configured select_text stays");
  assert.equal(linksLabelled(page, "Auswählen").length, 3, "the default one is translated");
  assert.match(page, 'aria-label="QR-Code der Einladung xmpp:example.com?register;preauth=');
  assert.not.match(page, /\{[a-z_.]+\}/, "no placeholder left");
});

test("lang carried on: register link, setup and registration-page Select targets; not onto an app's own link", async () => {
  const token = await newToken();
  const page = (await get(`/invites_page?${token}&lang=es`)).body.toString();
  const base = `http://example.com:${srv.port}/invites_page`;
  assert.equal(linksLabelled(page, "registra una cuenta manualmente"), [`register?t=${token}&lang=es`]);
  assert.equal(attrs(page, "a", "href", (el) => el.includes('class="button"')), [
    `${base}/setup/preauth-app?${token}&lang=es`,
    `register?t=${token}&c=plain-app&lang=es`,
    `https://magic.example/${token}`,
    `register?t=${token}&c=dino&lang=es`,
  ]);
  // chosen by Accept-Language: the browser sends it again, nothing to carry
  const byHeader = (await get(`/invites_page?${token}`, "es")).body.toString();
  assert.equal(linksLabelled(byHeader, "registra una cuenta manualmente"), [`register?t=${token}`]);
  assert.not.match(byHeader, "&amp;lang=");
});

test("setup page: translated, configured download and setup texts kept, lang on the way back", async () => {
  const token = await newToken();
  const r = await get(`/invites_page/setup/preauth-app?${token}&lang=fr`);
  assert.is(r.status, 200);
  speaks(r, "fr", "setup");
  const page = r.body.toString();
  assert.is(text(page, "h1"), "Rejoindre Café <Zürich> avec Preauth App");
  assert.match(page, "Étape 1 : installer Preauth App");
  assert.match(page, "Configured download text");
  assert.match(page, ">Configured button</a>");
  const unknown = await get(`/invites_page/setup/nope?${token}&lang=fr`);
  assert.is(unknown.status, 404);
  speaks(unknown, "fr", "unknown app");
  assert.equal(linksLabelled(unknown.body.toString(), "Retour à votre invitation"), [`${`http://example.com:${srv.port}/invites_page`}?${token}&lang=fr`]);
  const invalid = await get(`/invites_page/setup/preauth-app?nosuch&lang=de`);
  speaks(invalid, "de", "invalid");
  assert.match(invalid.body.toString(), "<h2>Einladung abgelaufen</h2>");
});

test("a token followed by anything but a last lang= part is still no token (as in Prosody)", async () => {
  const token = await newToken();
  for (const q of [`${token}&x=1`, `${token}&x=1&lang=de`, `lang=de&${token}`, `${token}&lang=de&x=1`]) {
    const r = await get(`/invites_page?${q}`);
    assert.is(r.status, 200, q);
    assert.is(r.header("link"), undefined, q);
  }
  speaks(await get(`/invites_page?${token}&x=1&lang=de`), "de", "invalid page in German");
});

test("hostile lang values: ignored, never reflected, no error", async () => {
  const token = await newToken();
  const hostile = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "de%22%3E%3Cscript%3E", "de\u0000", "%E0%A4%A", "de-" + "x".repeat(5000), "de&lang=fr"];
  for (const value of hostile) {
    const q = encodeURIComponent(value);
    for (const path of [`/invites_page?${token}&lang=${q}`, `/invites_page/setup/preauth-app?${token}&lang=${q}`, `/register?t=${token}&lang=${q}`]) {
      const r = await get(path);
      assert.ok(r.status === 200, `${path}: ${r.status}`);
      const body = r.body.toString();
      assert.is(r.header("content-language"), "en", path);
      for (const needle of ["alert(1)", "onerror", "&amp;lang=", "lang=%", "lang=&lt;", "xxxxxxxxxx", "\u0000"]) assert.not.ok(body.includes(needle), `${path}: ${needle}`);
    }
  }
  // raw, unencoded junk in the query
  const raw = await rawRequest(srv.port, `GET /invites_page?${token}&lang="><b>x HTTP/1.1\r\nHost: example.com\r\n\r\n`);
  assert.ok(raw.status < 500, String(raw.status));
  assert.not.match(raw.body.toString(), "<b>x");
});

test("register form: lang from the query; the form posts to the same URL, so errors and success stay in it", async () => {
  const token = await newToken();
  const form = await get(`/register?t=${token}&c=plain-app&lang=de`);
  speaks(form, "de", "form");
  const page = form.body.toString();
  assert.is(text(page, "h1"), "Registrierung bei Café <Zürich>");
  assert.is(text(page, "title"), "Café <Zürich>");
  assert.match(page, "Mindestens 10 Zeichen.");
  assert.match(page, '<form method="post">', "no action: the POST keeps the query");
  const short = await post(`/register?t=${token}&c=plain-app&lang=de`, { token, user: "anna", password: "short", app_id: "plain-app" });
  speaks(short, "de", "policy error");
  assert.match(short.body.toString(), "Das Passwort ist zu kurz (mindestens 10 Zeichen)");
  const taken = await post(`/register?t=${token}&lang=fr`, { token, user: "", password: "x" });
  assert.match(taken.body.toString(), "Veuillez remplir tous les champs.");
  const ok = await post(`/register?t=${token}&c=plain-app&lang=es`, { token, user: "anna", password: "long enough password", app_id: "plain-app" });
  speaks(ok, "es", "success");
  assert.match(ok.body.toString(), "<h2>¡Enhorabuena!</h2>");
  assert.match(ok.body.toString(), "Instala Plain App en tu dispositivo.");
  assert.match(ok.body.toString(), "Abre Plain App e inicia sesión");
  // a bad token goes back to the landing page with the query, lang included
  const back = await get(`/register?t=nosuch&lang=fr`);
  assert.is(back.status, 303);
  const location = back.header("location")!;
  assert.is(location, `http://example.com:${srv.port}/invites_page?t=nosuch&lang=fr`);
  const invalid = await get(location.replace(/^http:\/\/[^/]+/, ""));
  speaks(invalid, "fr", "invalid after redirect");
  assert.match(invalid.body.toString(), "<h2>Invitation expirée</h2>");
});

test("register form: Accept-Language without lang; a configured setup text and veto reason stay as given", async () => {
  const token = await newToken();
  const form = await get(`/register?t=${token}&c=preauth-app`, "fr-CA, en;q=0.5");
  speaks(form, "fr", "form by header");
  assert.match(form.body.toString(), "Preauth App est déjà installée sur cet appareil ?");
  const ok = await post(`/register?t=${token}&c=preauth-app`, { token, user: "bruno", password: "long enough password", app_id: "preauth-app" }, "fr");
  assert.match(ok.body.toString(), "<p>Configured setup text</p>");
  const bus = srv.rt.eventsFor("example.com");
  const veto = (e: Record<string, unknown>) => void ((e.allowed = false), (e.reason = "Configured <reason>"));
  bus.hook("user-registering", veto, 10);
  try {
    const t2 = await newToken();
    const r = await post(`/register?t=${t2}&lang=de`, { token: t2, user: "carla", password: "long enough password" });
    speaks(r, "de", "veto");
    assert.is(text(r.body.toString(), "title"), "Einladung zu Café <Zürich>");
    assert.match(r.body.toString(), "<h2>Fehler bei der Registrierung</h2>");
    assert.match(r.body.toString(), "Configured &lt;reason&gt;");
  } finally {
    bus.unhook("user-registering", veto);
  }
});

test("the built-in apps' own texts are translated (landing, setup, register and success pages)", async () => {
  const builtin = srv.exports<InvitesApi>("builtin.example", "invites");
  const [invite] = await builtin.createAccount();
  const token = invite!.token;
  const on = (path: string) => srv.get(path, { host: "builtin.example" });
  const landing = (await on(`/invites_page?${token}&lang=de`)).body.toString();
  assert.match(landing, "Eine schnelle, akkuschonende XMPP-App für Android-Handys");
  assert.not.match(landing, "battery-friendly");
  const setup = (await on(`/invites_page/setup/siskin-im?${token}&lang=fr`)).body.toString();
  assert.match(setup, "Une application XMPP pour iPhone et iPad par Tigase");
  assert.match(setup, ">Télécharger dans l’App Store</a>");
  const english = (await on(`/invites_page/setup/siskin-im?${token}`)).body.toString();
  assert.match(english, ">Download on the App Store</a>");
  const body = new URLSearchParams({ token, user: "dora", password: "long enough password", app_id: "beagle-im" }).toString();
  const ok = await rawRequest(
    srv.port,
    `POST /register?t=${token}&c=beagle-im&lang=es HTTP/1.1\r\nHost: builtin.example\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  );
  assert.match(ok.body.toString(), "<h3>1. Consigue Beagle IM</h3>");
  assert.match(ok.body.toString(), ">Descargar en el Mac App Store</a>");
  assert.match(ok.body.toString(), "<p>Abre Beagle IM y elige añadir una cuenta existente");
});

test.run();
