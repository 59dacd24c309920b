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
 * Differences from Prosody (deliberate): the QR code is the invite's xmpp: URI as an SVG drawn on
 * the server (Prosody draws the page URL with a client-side script, so `static/qrcode.min.js` is
 * not served); an unknown app on the setup page answers 404 with its own page (Prosody: 200 with
 * raw `{app.name}` placeholders); the setup page also knows the inviter; the pages are our own.
 */
import type { HttpEvent, Module, ModuleExports } from "prosody-ts";
import { createHtmlRenderer, createUrlRenderer, SECRET_PAGE_HEADERS, serveFiles, type TemplateValues } from "prosody-ts/util";
import { staticFiles } from "./static.js";
import { INVALID_PAGE, INVITE_PAGE, SETUP_PAGE, UNKNOWN_APP_PAGE } from "./templates.js";

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

  await module.depends("register_apps");
  const siteApps = module.shared<SharedApps>("register_apps/apps");
  const siteName = module.getOptionString("site_name", module.host) ?? module.host;
  const registrationPage = module.getOptionString("invites_registration_page", DEFAULT_REGISTRATION_PAGE) ?? DEFAULT_REGISTRATION_PAGE;
  const staticUrl = `${baseUrl}/static`;
  const renderHtml = createHtmlRenderer({ baseUrl });

  const findInvite = async (query: string | undefined): Promise<ValidatedInvite | undefined> => {
    if (query === undefined) return undefined;
    const [invite] = await invites.get(query);
    return invite;
  };

  const pageVars = async (invite: ValidatedInvite): Promise<Record<string, unknown>> => ({
    site_name: siteName,
    token: invite.token,
    uri: invite.uri,
    type: invite.type,
    jid: invite.jid,
    inviter: invite.inviter,
    static: staticUrl,
    base_url: baseUrl,
    qr_svg: await qrSvg(invite.uri),
  });

  /** Each app with `proceed_url`, where its "Select" button leads. */
  const withProceedUrls = (apps: readonly App[], vars: TemplateValues): App[] =>
    apps.map((app) => {
      const rendered: App = { ...app };
      const values = { app: rendered, invite: vars, base_url: baseUrl };
      if (luaTrue(app.magic_link_format)) rendered.proceed_url = renderUrl(String(app.magic_link_format), values);
      else if (luaTrue(app.supports_preauth_uri)) rendered.proceed_url = renderUrl("{base_url!}/setup/{app.id}?{invite.token}", values);
      else rendered.proceed_url = renderUrl(registrationPage, values);
      return rendered;
    });

  const invalidPage = () => renderHtml(INVALID_PAGE, { site_name: siteName, static: staticUrl });

  async function invitePage(event: HttpEvent): Promise<string> {
    event.response.headers.content_type = HTML;
    const invite = await findInvite(event.request.url.query);
    if (!invite) return invalidPage();
    const vars = await pageVars(invite);
    vars.apps = withProceedUrls(siteApps.list ?? [], vars);
    event.response.headers.link = `<${invite.uri}>; rel="alternate"`;
    return renderHtml(INVITE_PAGE, vars);
  }

  async function setupPage(event: HttpEvent, appId = ""): Promise<string | { statusCode: number; body: string }> {
    event.response.headers.content_type = HTML;
    const invite = await findInvite(event.request.url.query);
    if (!invite) return invalidPage();
    const app = siteApps.byId?.get(appId);
    if (!app) {
      const body = renderHtml(UNKNOWN_APP_PAGE, {
        site_name: siteName,
        static: staticUrl,
        app_id: appId,
        invite_page: `${baseUrl}?${invite.token}`,
      });
      return { statusCode: 404, body };
    }
    const vars = await pageVars(invite);
    vars.apps = siteApps.list ?? [];
    vars.app = withProceedUrls([app], vars)[0];
    return renderHtml(SETUP_PAGE, vars);
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
