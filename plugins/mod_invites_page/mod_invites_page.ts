/**
 * mod_invites_page: a web page per invite (prosody-modules' mod_invites_page, as of Prosody 0.12).
 *
 * - On `invite-created` every invite that allows registration gets `landing_page`: the
 *   `invites_page` template (URL renderer, vars `host`, `invite`), by default
 *   `<module.httpUrl()>?{invite.token}`. Password-reset invites get one too, as in the 0.12-era
 *   module (newer prosody-modules skip them); contact-only invites get none.
 * - `GET /invites_page?TOKEN` (the whole query is the token): the invite page with the apps of
 *   mod_register_apps, each with its "Select" target (the app's magic link, our setup page for
 *   apps that take preauth URIs, else `invites_registration_page`), and `Link: <uri>; rel="alternate"`.
 *   Unknown, expired or missing tokens get the "Invite expired" page, with status 200 like Prosody.
 * - `GET /invites_page/setup/APP?TOKEN`: install-then-open steps for one app.
 * - `GET /invites_page/static/*`: the pages' own CSS, scripts and images.
 * - `invites_page_external = true`: only set `landing_page` (default `https://HOST/?{invite.token}`),
 *   serve nothing and do not load mod_register_apps.
 * - In prosodyctl (no HTTP there) only an explicit `invites_page` template sets `landing_page`, so
 *   `prosodyctl mod_invites generate` prints the rendered template, or else the xmpp: URI.
 *
 * - The pages speak English, German, French and Spanish (locales/): `lang` in the query
 *   (`?TOKEN&lang=de`; only a last `&lang=` part is split off the token) or else Accept-Language
 *   chooses; links to the setup and register pages carry a `lang` that chose the language.
 *   `site_name` and the app texts from `site_apps` are shown as configured.
 *
 * Differences from Prosody (deliberate): the QR code is the invite's xmpp: URI as an SVG drawn on
 * the server (Prosody draws the page URL with a client-side script, so `static/qrcode.min.js` is
 * not served); an unknown app on the setup page answers 404 with its own page (Prosody: 200 with
 * raw `{app.name}` placeholders); the setup page also knows the inviter; the pages are our own.
 */
import type { HttpEvent, Module, ModuleExports } from "prosody-ts";
import { createHtmlRenderer, createUrlRenderer, formdecode, loadCatalog, SECRET_PAGE_HEADERS, serveFiles, type TemplateValues } from "prosody-ts/util";
import { PAGE_MESSAGES } from "./locales/index.js";
import { staticFiles } from "./static.js";
import { pageTemplates, TEMPLATE_ARGS, type PageTemplates } from "./templates.js";

// The other modules' types, from their entries in ModuleExports (no import of their folders).
type InvitesApi = ModuleExports["invites"];
/** An invite as stored and as `invite-created` carries it. */
type Invite = NonNullable<Awaited<ReturnType<InvitesApi["createAccount"]>>[0]>;
type ValidatedInvite = NonNullable<Awaited<ReturnType<InvitesApi["get"]>>[0]>;
type App = ReturnType<ModuleExports["register_apps"]["getApps"]>[number];
/** What mod_register_apps keeps in `module.shared("register_apps/apps")`. */
interface SharedApps {
  list?: App[];
  byId?: Map<string, App>;
}

const HTML = "text/html; charset=utf-8";
const DEFAULT_REGISTRATION_PAGE = "register?t={invite.token}&c={app.id}";

const renderUrl = createUrlRenderer();

export default async function (module: Module): Promise<void> {
  const external = module.getOptionBoolean("invites_page_external", false) ?? false;
  const configured = module.getOptionString("invites_page");

  const addLandingPage = (template: string) =>
    module.hook(
      "invite-created",
      (invite: Invite) => {
        // No page for contact-only invites: their token is not valid for registration.
        if (!invite || !invite.allow_registration) return;
        invite.landing_page = renderUrl(template, { host: module.host, invite });
      },
      0,
    );

  if (module.server.processType !== "server") {
    // prosodyctl: mod_http does not run here, so only an explicit template gives a real URL.
    if (configured !== undefined) addLandingPage(configured);
    return;
  }

  let baseUrl = `https://${module.host}/`;
  if (!external) {
    await module.depends("http");
    baseUrl = module.httpUrl();
  }
  const invites = await module.depends("invites");
  if (external && configured === undefined) {
    module.log("warn", "invites_page_external is set but invites_page is not; landing pages will be %s?TOKEN", baseUrl);
  }
  addLandingPage(configured ?? `${baseUrl}?{invite.token}`);
  if (external) return;

  const registerApps = await module.depends("register_apps");
  const siteApps = module.shared<SharedApps>("register_apps/apps");
  const siteName = module.getOptionString("site_name", module.host) ?? module.host;
  const registrationPage = module.getOptionString("invites_registration_page", DEFAULT_REGISTRATION_PAGE) ?? DEFAULT_REGISTRATION_PAGE;
  const staticUrl = `${baseUrl}/static`;
  const renderHtml = createHtmlRenderer({ baseUrl });
  const catalog = await loadCatalog(PAGE_MESSAGES, "en");
  const templates = new Map<string, PageTemplates>(
    catalog.languages.map((lang) => [lang, pageTemplates(lang, (key, args) => catalog.format(lang, key, { ...TEMPLATE_ARGS, ...args }))]),
  );

  /** The token and the page's language from `?TOKEN[&lang=xx]`; sets the language headers. */
  const readQuery = (event: HttpEvent) => {
    const [, token, langPart] = /^(.*?)(?:(?:^|&)(lang=[^&]*))?$/s.exec(event.request.url.query ?? "")!;
    const { lang, explicit } = catalog.negotiate(formdecode(langPart).get("lang"), event.request.headers.accept_language);
    event.response.headers.content_type = HTML;
    event.response.headers.content_language = lang;
    event.response.headers.vary = "Accept-Language";
    return {
      token: event.request.url.query === undefined ? undefined : token!,
      lang,
      pages: templates.get(lang)!,
      // Carried on to the setup and register pages: only a language the visitor chose, only ours.
      langQuery: explicit ? `&lang=${lang}` : "",
    };
  };

  const findInvite = async (token: string | undefined): Promise<ValidatedInvite | undefined> => {
    if (token === undefined) return undefined;
    const [invite] = await invites.get(token);
    return invite;
  };

  const pageVars = async (invite: ValidatedInvite, langQuery: string): Promise<Record<string, unknown>> => ({
    site_name: siteName,
    token: invite.token,
    uri: invite.uri,
    type: invite.type,
    jid: invite.jid,
    inviter: invite.inviter,
    static: staticUrl,
    base_url: baseUrl,
    qr_svg: await qrSvg(invite.uri),
    lang_query: langQuery,
  });

  /** Each app with `proceed_url`, where its "Select" button leads. */
  /** `langQuery` goes onto our setup page and the registration page, not onto an app's own link. */
  const withProceedUrls = (apps: readonly App[], vars: TemplateValues, langQuery: string): App[] =>
    apps.map((app) => {
      const rendered: App = { ...app };
      const values = { app: rendered, invite: vars, base_url: baseUrl };
      if (luaTrue(app.magic_link_format)) rendered.proceed_url = renderUrl(String(app.magic_link_format), values);
      else if (luaTrue(app.supports_preauth_uri)) rendered.proceed_url = renderUrl("{base_url!}/setup/{app.id}?{invite.token}", values) + langQuery;
      else rendered.proceed_url = withQuery(renderUrl(registrationPage, values), langQuery);
      return rendered;
    });

  /** The listed apps, the built-in ones' texts in `lang`. */
  const appsIn = (lang: string): App[] => (siteApps.list ?? []).map((app) => registerApps.localize(app, lang));

  const invalidPage = (pages: PageTemplates) => renderHtml(pages.invalid, { site_name: siteName, static: staticUrl });

  async function invitePage(event: HttpEvent): Promise<string> {
    const { token, lang, pages, langQuery } = readQuery(event);
    const invite = await findInvite(token);
    if (!invite) return invalidPage(pages);
    const vars = await pageVars(invite, langQuery);
    vars.apps = withProceedUrls(appsIn(lang), vars, langQuery);
    event.response.headers.link = `<${invite.uri}>; rel="alternate"`;
    return renderHtml(pages.invite, vars);
  }

  async function setupPage(event: HttpEvent, appId = ""): Promise<string | { statusCode: number; body: string }> {
    const { token, lang, pages, langQuery } = readQuery(event);
    const invite = await findInvite(token);
    if (!invite) return invalidPage(pages);
    const found = siteApps.byId?.get(appId);
    const app = found && registerApps.localize(found, lang);
    if (!app) {
      const body = renderHtml(pages.unknownApp, {
        site_name: siteName,
        static: staticUrl,
        app_id: appId,
        invite_page: `${baseUrl}?${invite.token}${langQuery}`,
      });
      return { statusCode: 404, body };
    }
    const vars = await pageVars(invite, langQuery);
    vars.apps = appsIn(lang);
    vars.app = withProceedUrls([app], vars, langQuery)[0];
    return renderHtml(pages.setup, vars);
  }

  module.provides("http", {
    route: {
      GET: invitePage,
      "GET /setup/*": setupPage,
      "GET /static/*": serveFiles(staticFiles()),
    },
    // Landing and setup pages (and the redirects between them) carry the token in their URL and
    // content; the static files get the same headers, which costs them only browser caching.
    headers: SECRET_PAGE_HEADERS,
  });
}

// --- Internal helpers ---

/** `url` with `&lang=xx` (`query`) added as its query's last part ("" adds nothing). */
function withQuery(url: string, query: string): string {
  if (query === "") return url;
  const hash = url.indexOf("#");
  const [path, fragment] = hash < 0 ? [url, ""] : [url.slice(0, hash), url.slice(hash)];
  return `${path}${path.includes("?") ? "&" : "?"}${query.slice(1)}${fragment}`;
}

/** Lua truth: everything but nil and false. */
function luaTrue(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false;
}

const qrCache = new Map<string, Promise<string>>();
const QR_CACHE_SIZE = 256;

/** The QR code of `text` as an SVG element (error correction M, 2-module quiet zone). */
export function qrSvg(text: string): Promise<string> {
  let svg = qrCache.get(text);
  if (!svg) {
    // Loaded on first use: prosodyctl loads this module without ever drawing a page.
    svg = import("qrcode").then((qr) => qr.default.toString(text, { type: "svg", errorCorrectionLevel: "M", margin: 2 }));
    svg.catch(() => qrCache.delete(text));
    if (qrCache.size >= QR_CACHE_SIZE) qrCache.delete(qrCache.keys().next().value!);
    qrCache.set(text, svg);
  }
  return svg;
}
