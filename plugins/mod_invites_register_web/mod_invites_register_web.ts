/**
 * mod_invites_register_web: create an account in the browser with an invite
 * (prosody-modules' mod_invites_register_web, spec invites-suite §6, golden §3.5).
 *
 *   GET  /register?t=TOKEN[&c=APP_ID]  the form (a bad token: 303 to <invites_page>?<query>)
 *   POST /register                     fields user, password, token[, app_id]
 *
 * Checks run in Prosody's order with its messages, then `user-registering` (a veto shows the
 * error page), the invite is claimed (taken out of the store atomically), the account is created
 * through the host's auth module (`authentication`, default internal_hashed), and
 * `user-registered` is fired (source "mod_invites_register_web"). Options: `site_name` (default
 * the host), `webchat_url`, `register_web_rate_per_ip` (default "10/minute", `false` = off).
 *
 * The pages speak English, German, French and Spanish (locales/), chosen by `lang` in the query
 * (the form posts back to its own URL, so the choice stays) or else by Accept-Language. A
 * reason given by a `user-registering` veto and the app texts from `site_apps` are shown as
 * given; mod_password_policy's three messages are translated.
 *
 * Deliberate differences from Prosody + prosody-modules:
 * - a password-reset invite (`additional_data.allow_reset = U`) resets U's password (only U; the
 *   username field must be U) and fires `user-password-reset`; a username-bound invite (jid
 *   `u@host`) registers only u. Prosody registers any new account with either;
 * - the success page shows the JID but never the password, and a login_link_format (password in
 *   a URL) is not used;
 * - a bad token on POST without a query string is a 303 (Prosody: bare 500); multipart bodies are
 *   read (Prosody: 500); other body types get 415; a record without `type` does not crash;
 * - the invite is consumed here, BEFORE the account is created, by an atomic claim (so a host
 *   without mod_invites_register cannot reuse single-use invites, and concurrent registrations in
 *   any number of our processes create one account per single-use invite): an invite already
 *   claimed gives "This invite has already been used." (409); a storage failure while claiming or
 *   creating gives a 503 page with Retry-After and puts the invite back (Prosody creates the
 *   account first and consumes the invite after, so a failed consume leaves it reusable);
 * - an account is created only if the username is still free at that moment (atomically, so two
 *   registrations of one name in different processes cannot overwrite each other's account);
 * - error re-renders keep the chosen app and the typed username;
 * - own HTML, self-contained (no /share/bootstrap4 references);
 * - form submissions are rate limited per client address (IPv6: per /64; a token bucket, in this
 *   process only): past the limit, 429 with Retry-After and RateLimit headers, nothing checked.
 */
import type { HttpEvent, HttpResultObject, Module, ModuleExports } from "prosody-ts";
import { PREP_MAX_BYTES, addressBucket, formdecode, id, limitRequest, loadCatalog, nodeprep, rateOption, RateLimiter, SECRET_PAGE_HEADERS, secretHint } from "prosody-ts/util";
import { multipartDecode } from "./form.js";
import { REGISTER_MESSAGES } from "./locales/index.js";
import { renderError, renderForm, renderSuccess, type PageLanguage, type SiteApp } from "./pages.js";

/** What an auth module (`authentication`) offers: mod_auth_internal_hashed's API is the contract. */
type AuthProvider = ModuleExports["auth_internal_hashed"];
type ValidatedInvite = NonNullable<Awaited<ReturnType<ModuleExports["invites"]["get"]>>[0]>;

/** An answer built here: always with its status. */
type Answer = HttpResultObject & { statusCode: number };

const HTML = "text/html; charset=utf-8";
const FORM_MAX_BYTES = 16 * 1024;
const NO_CACHE = {
  "Cache-Control": "no-cache, no-store, must-revalidate",
  Pragma: "no-cache",
  Expires: "0",
};

export default async function (module: Module): Promise<void> {
  const host = module.host;
  const invites = await module.depends("invites");
  const policy = await module.depends("password_policy");
  const authName = module.getOptionString("authentication", "internal_hashed") ?? "internal_hashed";
  const auth = await module.depends<AuthProvider>(`auth_${authName}`);
  await module.depends("http");
  // Prosody depends on these too; here they are optional (pages and app list come from them).
  const optional = <T>(name: string, loading: Promise<T>) =>
    loading.catch((err) => void module.log("debug", "Continuing without mod_%s: %s", name, err instanceof Error ? err.message : err));
  const registerApps = await optional("register_apps", module.depends("register_apps"));
  await optional("invites_page", module.depends("invites_page"));

  // Loaded with the server; prosodyctl, which draws no page, does not load the message libraries.
  let catalog = module.server.processType === "server" ? await loadCatalog(REGISTER_MESSAGES, "en") : undefined;
  /** The page's language from `lang` in the query, else Accept-Language. */
  const languageOf = async (request: HttpEvent["request"]): Promise<PageLanguage> => {
    catalog ??= await loadCatalog(REGISTER_MESSAGES, "en");
    const { lang } = catalog.negotiate(formdecode(request.url.query).get("lang"), request.headers.accept_language);
    const loaded = catalog;
    return { lang, t: (key, values) => loaded.format(lang, key, values) };
  };

  const siteName = () => module.getOptionString("site_name", host) ?? host;
  const webchatUrl = () => module.getOptionString("webchat_url");
  const minLength = () => {
    const n = Number(policy.getPolicy().length);
    return Number.isFinite(n) && n > 0 ? n : 1;
  };

  /** The app `appId` names in mod_register_apps' shared list, if any, its texts in the page's language. */
  function findApp(appId: string | undefined, l: PageLanguage): SiteApp | undefined {
    const app = findListedApp(appId);
    return app && typeof registerApps?.localize === "function" ? registerApps.localize(app, l.lang) : app;
  }

  function findListedApp(appId: string | undefined): SiteApp | undefined {
    if (!appId) return undefined;
    const shared = module.shared<Record<string, unknown>>("register_apps/apps");
    const direct = Object.hasOwn(shared, appId) ? shared[appId] : undefined;
    if (isApp(direct)) return direct;
    // mod_register_apps keeps { list: App[], byId: Map }; plain objects keyed by id work too.
    for (const v of Object.values(shared)) {
      const candidates = v instanceof Map ? [v.get(appId)] : Array.isArray(v) ? v : [v];
      for (const candidate of candidates) if (isApp(candidate) && appIdOf(candidate) === appId) return candidate;
    }
    return undefined;
  }

  const html = (l: PageLanguage, statusCode: number, body: string, extra: Record<string, string> = {}): Answer => ({
    statusCode,
    headers: { content_type: HTML, content_language: l.lang, vary: "Accept-Language", ...extra },
    body,
  });

  /** Storage failed: nothing was registered, the invite is still valid; try again shortly. */
  const unavailable = (l: PageLanguage, errorId: string): Answer =>
    html(l, 503, renderError(siteName(), l.t("error.unavailable", { error_id: errorId }), l), {
      ...NO_CACHE,
      retry_after: "5",
    });

  /** To the landing page with the original query (golden R03–R05, R13, R15). */
  const toInvitePage = (query: string | undefined): Answer => ({
    statusCode: 303,
    headers: { location: `${module.httpUrl("invites_page")}?${query ?? ""}` },
  });

  function formPage(l: PageLanguage, invite: ValidatedInvite, app: SiteApp | undefined, appId: string | undefined, message?: string, username?: string) {
    const resetFor = invite.resetUsername;
    return html(
      l,
      200,
      renderForm({
        siteName: siteName(),
        domain: host,
        token: invite.token,
        uri: invite.uri,
        app,
        appId: app ? appId : undefined,
        minLength: minLength(),
        message,
        username,
        resetFor,
        fixedUsername: resetFor === undefined ? invite.boundUsername : undefined,
      }, l),
    );
  }

  async function getForm(event: HttpEvent): Promise<Answer> {
    const query = event.request.url.query;
    const params = formdecode(query);
    const [invite] = await invites.get(params.get("t") ?? "");
    if (!invite) return toInvitePage(query);
    const appId = params.get("c");
    const l = await languageOf(event.request);
    return formPage(l, invite, findApp(appId, l), appId);
  }

  // One registration at a time per host: the checks and the account write must not interleave.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  // Each submission (a registration attempt, or a guess at a token) counts against its address.
  const rate = rateOption(module, "register_web_rate_per_ip", "10/minute");
  const perAddress = rate ? new RateLimiter({ rate }) : undefined;

  async function postForm(event: HttpEvent): Promise<Answer | number> {
    if (perAddress) {
      // The pages keep Prosody's headers (browsers make no use of ours); a 429 carries them all.
      const headers: Record<string, string> = {};
      const refused = limitRequest(headers, [{ name: "address", limiter: perAddress, key: addressBucket(event.request.ip) }]);
      if (refused) {
        const l = await languageOf(event.request);
        return html(l, 429, renderError(siteName(), l.t("error.rate_limited", { seconds: refused.retryAfter }), l), { ...headers, ...NO_CACHE });
      }
    }
    const form = readBody(event.request);
    if (typeof form === "number") return form;
    return serially(() => register(event, form));
  }

  async function register(event: HttpEvent, form: Map<string, string>): Promise<Answer> {
    const { request } = event;
    const token = form.get("token") ?? "";
    const [invite] = await invites.get(token);
    if (!invite) return toInvitePage(request.url.query);

    const user = form.get("user") ?? "";
    const password = form.get("password") ?? "";
    const appId = form.get("app_id");
    const l = await languageOf(request);
    const app = findApp(appId, l);
    const t = l.t;
    const again = (message: string, typed = user) => formPage(l, invite, app, appId, message, typed);

    if (user === "" || password === "" || token === "") return again(t("error.fill_in"));
    // Prosody cannot prepare longer usernames or passwords either (it says "invalid characters" or
    // fails with "An unknown error"); a clear message, and no hashing of megabytes.
    if (Buffer.byteLength(user, "utf8") > PREP_MAX_BYTES) return again(t("error.username_too_long"), "");
    const username = nodeprep(user);
    if (!username) return again(t("error.username_invalid"));

    const resetFor = invite.resetUsername;
    if (resetFor !== undefined) {
      if (username !== resetFor) return again(t("error.reset_other", { jid: `${resetFor}@${host}` }));
      if (!(await auth.userExists(username))) return again(t("error.no_account"));
    } else {
      const bound = invite.boundUsername;
      if (bound !== undefined && username !== bound) return again(t("error.bound", { username: bound }));
      if (await auth.userExists(username)) return again(t("error.username_taken"));
    }
    if (Buffer.byteLength(password, "utf8") > PREP_MAX_BYTES) return again(t("error.password_too_long", { max: PREP_MAX_BYTES }));
    const problem = policy.checkPassword(password, { username });
    if (problem) return again(policyText(problem, l));

    const registering: Record<string, unknown> = {
      username,
      host,
      ip: request.ip,
      allowed: true,
      validated_invite: invite,
    };
    if (resetFor !== undefined) registering.allow_reset = resetFor;
    // Handlers may await (a lookup in storage) before they veto.
    await module.fireEventAsync("user-registering", registering);
    if (registering.allowed === false) {
      const reason = typeof registering.reason === "string" ? registering.reason : errorText(registering.error);
      return html(l, 200, renderError(siteName(), reason ?? t("error.not_allowed"), l));
    }

    // Take the invite out of the store (atomically among all our processes) BEFORE the account
    // exists: of concurrent registrations with one single-use invite, exactly one gets past here.
    let claimed: boolean;
    try {
      claimed = await invite.claim();
    } catch (e) {
      const errorId = id.short();
      module.log("error", "Could not claim invite %s for %s@%s (%s): %s", secretHint(invite.token), username, host, errorId, e instanceof Error ? e.message : e);
      return unavailable(l, errorId);
    }
    if (!claimed) return html(l, 409, renderError(siteName(), t("error.used"), l), NO_CACHE);

    // ifAbsent: another process may have registered this username since the check above.
    const [ok, err] = resetFor !== undefined ? await auth.setPassword(username, password) : await auth.createUser(username, password, { ifAbsent: true });
    if (err === "user-exists" || err === "username-too-long") {
      await invite.unclaim().catch((e) => module.log("error", "Could not put back invite %s: %s", secretHint(invite.token), e instanceof Error ? e.message : e));
      return again(t(err === "user-exists" ? "error.username_taken" : "error.username_too_long"));
    }
    if (!ok) {
      const errorId = id.short();
      module.log("error", "Could not %s %s@%s (%s): %s", resetFor !== undefined ? "reset the password of" : "register", username, host, errorId, err);
      // The invite was not spent on anything: put it back (if that fails too, it is lost, never reusable).
      await invite.unclaim().catch((e) =>
        module.log("error", "Could not put back invite %s after the failed registration (%s): %s", secretHint(invite.token), errorId, e instanceof Error ? e.message : e),
      );
      return err === "unable-to-save-data" ? unavailable(l, errorId) : html(l, 200, renderError(siteName(), t("error.unknown", { error_id: errorId }), l));
    }

    // Awaited: the answer waits until the handlers' writes (the invite's roles) are durable. A
    // failure was logged by its handler and changes nothing here (the invite was claimed above).
    const done = resetFor !== undefined
      ? module.fireEventAsync("user-password-reset", { ...registering, source: "mod_invites_register_web" })
      : module.fireEventAsync("user-registered", { username, host, source: "mod_invites_register_web", validated_invite: invite, ip: request.ip });
    await done.catch((e) => module.log("debug", "A handler of the registration of %s@%s failed: %s", username, host, e instanceof Error ? e.message : e));
    // Prosody's wording for a new account (mod_register_ibr), and where it came from.
    if (resetFor !== undefined) module.log("info", "Password reset for %s@%s through the web form", username, host);
    else module.log("info", "User account created: %s@%s (through the web form)", username, host);

    return html(
      l,
      200,
      renderSuccess({ siteName: siteName(), jid: `${username}@${host}`, app, webchatUrl: webchatUrl(), reset: resetFor !== undefined }, l),
      NO_CACHE,
    );
  }

  module.provides("http", {
    default_path: "register",
    route: {
      GET: getForm,
      POST: postForm,
    },
    // Four short fields (user and password at most 1023 bytes each, as Prosody), even percent-encoded
    // or as multipart, fit with room to spare; a larger body is refused before it is read.
    max_content_size: FORM_MAX_BYTES,
    // Every page here carries the invite token (URL, form, redirect).
    headers: SECRET_PAGE_HEADERS,
  });
}

// --- Internal helpers ---

/** The form fields of a POST body: urlencoded (also without a Content-Type) or multipart. */
function readBody(request: HttpEvent["request"]): Map<string, string> | number {
  const type = (request.headers.content_type ?? "").trim();
  const mime = type.split(";")[0]!.trim().toLowerCase();
  if (mime === "" || mime === "application/x-www-form-urlencoded") return formdecode(request.body);
  if (mime === "multipart/form-data") return multipartDecode(request.rawBody, type) ?? 400;
  return 415;
}

function isApp(v: unknown): v is SiteApp {
  return !!v && typeof v === "object" && !Array.isArray(v) && typeof (v as SiteApp).name === "string";
}

/** mod_register_apps' id: `id`, else the name with runs of non-alphanumerics as "-", lower-cased. */
function appIdOf(app: SiteApp): string {
  return typeof app.id === "string" ? app.id : app.name.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase();
}

/**
 * mod_password_policy's messages (Prosody's wording, fixed strings) in the page's language; any
 * other text (from another policy module) as it is.
 */
function policyText(problem: string, { t }: PageLanguage): string {
  const short = /^Password is too short \(minimum (\d+) characters\)$/.exec(problem);
  if (short) return t("error.password_short", { min: Number(short[1]) });
  if (problem === "Password must not include your username") return t("error.password_username");
  if (problem === "No password provided") return t("error.no_password");
  return problem;
}

function errorText(error: unknown): string | undefined {
  if (error && typeof error === "object" && typeof (error as { text?: unknown }).text === "string") return (error as { text: string }).text;
  return undefined;
}
