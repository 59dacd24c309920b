/**
 * mod_http_admin_api: the invite endpoints of Snikket's admin API (spec §12) under `/admin_api`,
 * authenticated with our API keys (mod_invites_api's, with scopes) instead of OAuth tokens, plus
 * extensions (max_uses, cursor listing, expire, who-invited-whom) and an OpenAPI 3.1 document at
 * `/admin_api/openapi.json`, generated from the same route definitions that validate requests.
 * Creating routes are rate-limited as mod_invites_api's endpoint is (its buckets, per key and per
 * client address).
 *
 * Deliberate differences from Snikket's module, each tested: every error has its status
 * (400/401/403/404/405/409/413/501; upstream's newest answers 500 for most), 401 carries
 * `WWW-Authenticate` (upstream sets a header named `authorization`), DELETE of an unknown invite is
 * 404, absent fields are JSON null rather than left out, and a `Content-Type` of
 * `application/json; charset=utf-8` is accepted.
 */
import type { HttpEvent, Module } from "prosody-ts";
import { cachedPromise, createApiRouter, openApiDocument, type ApiReply, type ApiRoute, type ApiScope, type OpenApiInfo } from "prosody-ts/util";
import { authFailureReply } from "./auth-reply.js";
import { inviteRoutes, unknownTypeRoute, type KeyAuth } from "./invite-routes.js";

/** Largest request body of a POST: an invite request is a few hundred bytes. */
const MAX_BODY = 64 * 1024;
const VERSION = "1.0.0";

/** The routes that create invites (a path below the app's base). */
const CREATING = /\/invites\/(account|group|reset)$/;

type KeyScope = "create" | "read" | "revoke" | "admin";

/** How these APIs authenticate, for the OpenAPI documents. */
const KEY_SECURITY: NonNullable<OpenApiInfo["security"]> = {
  name: "apiKey",
  scheme: {
    type: "http",
    scheme: "bearer",
    description: "An API key `<id>/<secret>` made by `prosodyctl mod_invites_api create HOST NAME [--scope …]`.",
  },
  describe: (scope) => (scope === "admin" ? "an API key with the `admin` scope" : `an API key with the \`${scope}\` (or \`admin\`) scope`),
};

/** The server part (scheme://host:port) and the path of an app's external URL. */
function splitUrl(url: string): { server: string; path: string } {
  try {
    const u = new URL(url);
    return { server: u.origin, path: u.pathname.replace(/\/+$/, "") };
  } catch {
    return { server: "/", path: "" };
  }
}

export default async function (module: Module): Promise<void> {
  const invites = await module.depends("invites");
  const keys = await module.depends("invites_api");
  await module.depends("http");
  const host = module.host;

  const store = cachedPromise(async () => {
    const [map, kv] = await Promise.all([module.openStore("invite_token", "map"), module.openStore("invite_token", "keyval")]);
    return { map, kv };
  });
  const tracking = cachedPromise(() => module.openStore("invites_tracking", "keyval"));
  const adminUrl = () => splitUrl(module.httpUrl("http_admin_api", "/admin_api"));

  /** The key scopes of mod_invites_api (authorize.ts); other names grant nothing. */
  const isKeyScope = (s: string): s is KeyScope => s === "create" || s === "read" || s === "revoke" || s === "admin";
  async function authorize(event: HttpEvent, scope: ApiScope): Promise<{ ok: true; auth: KeyAuth } | { ok: false; reply: ApiReply }> {
    if (!isKeyScope(scope)) throw new TypeError(`route scope ${scope} is not an API key scope`);
    const r = await keys.authorize(event.request, scope);
    if (r.ok) {
      // Creating invites is what a leaked key would be used for: the same buckets as
      // mod_invites_api's endpoint (per key, per client address).
      if (event.request.method === "POST" && CREATING.test(event.request.path)) {
        const limited = keys.rateLimit(event, r);
        if (limited) return { ok: false, reply: { status: 429, json: JSON.parse(String(limited.body)), headers: limited.headers } };
      }
      return { ok: true, auth: { keyId: r.keyId, scopes: r.scopes } };
    }
    return { ok: false, reply: authFailureReply(r.reason, scope, host) };
  }
  const allows = (auth: KeyAuth, scope: ApiScope) => auth.scopes.includes("admin") || auth.scopes.includes(scope);

  const routes: ApiRoute<KeyAuth>[] = inviteRoutes({
    host,
    invites,
    store,
    tracking,
    defaultTtl: () => module.getOptionNumber("invite_expiry", 86400 * 7) ?? 86400 * 7,
    listUrl: () => `${adminUrl().path}/invites`,
  });
  const adminDoc = () => {
    const { server, path } = adminUrl();
    return openApiDocument(routes, {
      title: `Admin API of ${host}`,
      version: VERSION,
      description: "Invite management (Snikket's mod_http_admin_api invite endpoints, with extensions), authenticated with API keys from `prosodyctl mod_invites_api create`.",
      server,
      prefix: path,
      security: KEY_SECURITY,
    });
  };
  routes.push(
    {
      method: "GET",
      path: "/openapi.json",
      operationId: "getOpenApi",
      summary: "This document",
      responses: { 200: { description: "The OpenAPI 3.1 document.", schema: { type: "object" } } },
      handler: () => ({ status: 200, json: adminDoc() }),
    },
    unknownTypeRoute,
  );
  const router = createApiRouter(routes, authorize, allows);
  const handle = router.serve;

  module.provides("http", {
    name: "http_admin_api",
    default_path: "/admin_api",
    route: { "GET /*": handle, "POST /*": handle, "DELETE /*": handle, "PUT /*": handle, "PATCH /*": handle },
    max_content_size: { "POST /*": MAX_BODY, "DELETE /*": 0, "PUT /*": 0, "PATCH /*": 0 },
    // Answers carry invite links and tokens.
    headers: { cache_control: "no-store" },
  });
}
