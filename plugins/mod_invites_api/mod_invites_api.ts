/**
 * mod_invites_api: an authenticated HTTP endpoint that creates account invites
 * (prosody-modules' mod_invites_api), plus `prosodyctl mod_invites_api` key management.
 *
 * Deliberate differences from Prosody 0.12 + prosody-modules, each tested:
 * - a request without a query string (e.g. Bearer auth only) is handled (Prosody answers a bare 500);
 * - POST is routed as well as GET (Prosody's keys allow POST but only GET is routed);
 * - secrets are stored hashed by default (see keys.ts);
 * - storage that fails (or cannot be opened for now) gives 503 + Retry-After, never a 403 for a
 *   valid key nor a 500 (Prosody: 500);
 * - rate limits (limits.ts): per client address and per key, 429 + Retry-After + RateLimit headers;
 * - key scopes, expiry, rotation and last use (authorize.ts, keys.ts, usage.ts).
 */
import type { CommandContext, HttpEvent, HttpResultObject, Module } from "prosody-ts";
import { StorageError } from "prosody-ts";
import { keysCommand } from "./cli.js";
import type { HttpRequest } from "prosody-ts";
import { cachedPromise, formdecode, SECRET_PAGE_HEADERS } from "prosody-ts/util";
import { openKeyStore } from "./keys.js";
import { authErrorBody, authorize, type AuthResult, type Scope } from "./authorize.js";
import { apiLimits } from "./limits.js";
import { invitesApiDocument } from "./openapi.js";
import { keyUsage } from "./usage.js";

/** What other modules get from `module.depends("invites_api")`. */
export interface InvitesApiExports {
  /** Checks the request's API key (Bearer header or `key` query parameter) for `scope`. */
  authorize(request: HttpRequest, scope: Scope): Promise<AuthResult>;
  /**
   * The host's rate limits for a request: its client address (invites_api_rate_per_ip) and, given
   * a successful `authorize` result, its key (the key's `rate`, else invites_api_rate; the same
   * bucket as /invites_api). Adds the RateLimit headers to `event.response`; returns the 429 answer
   * to send (JSON, with Retry-After), or undefined when the request may go on.
   */
  rateLimit(event: HttpEvent, auth?: AuthResult): HttpResultObject | undefined;
}

declare module "prosody-ts" {
  interface ModuleExports {
    invites_api: InvitesApiExports;
  }
}

export default async function (module: Module): Promise<void> {
  const invites = await module.depends("invites");
  await module.depends("http");
  // A failed open (storage unavailable for now: 503) is retried by the next request.
  const keysStore = cachedPromise(() => openKeyStore(module));
  const limits = apiLimits(module);
  const usage = keyUsage(module);
  const exported: InvitesApiExports = {
    authorize: async (request, scope) => {
      const result = await authorize(await keysStore(), request, scope);
      if (result.ok) usage.touch(result.keyId);
      return result;
    },
    rateLimit: (event, auth) => limits.check(event, auth),
  };
  Object.assign(module.exports, exported);

  async function handle(event: HttpEvent): Promise<number | string | HttpResultObject> {
    const { request, response } = event;
    const params = formdecode(request.url.query);
    const auth = await exported.authorize(request, "create");
    const refused = !auth.ok || (auth.key.allowed_methods && !auth.key.allowed_methods[request.method]);
    // Every request counts against its client address (so guessing keys is slow); one about to
    // create an invite against its key as well. Refused requests keep Prosody's bare answers.
    const limited = exported.rateLimit(event, refused ? undefined : auth);
    if (limited) return limited;
    if (!auth.ok) {
      // Prosody's answer to a missing or wrong key is a bare 403; only our extensions (expiry,
      // scopes) say more, as JSON, since no Prosody client can meet them.
      if (auth.reason !== "expired" && auth.reason !== "scope") return 403;
      response.statusCode = auth.reason === "expired" ? 401 : 403;
      response.headers.content_type = "application/json";
      return authErrorBody(auth, "create");
    }
    const keyId = auth.keyId;
    if (auth.key.allowed_methods && !auth.key.allowed_methods[request.method]) return 405;

    const [invite, err] = await invites.createAccount(undefined, { source: `api/token/${keyId}` });
    if (!invite) {
      // Only a failed store write gets here: a storage failure, which the HTTP layer answers with
      // 503 + Retry-After (nothing was created; the client may try again).
      module.log("error", "Failed to create invite: %s", err);
      throw new StorageError(`the new invite could not be stored (${err})`);
    }
    // An audit line for the server log: which key made which kind of invite. Never the key's
    // secret, nor the invite's token (both grant something).
    module.log("info", "Created %s invite via the API with key %s", invite.type === "register" ? "an account" : `a ${invite.type}`, keyId);
    response.headers.location = invite.landing_page ?? invite.uri;
    return params.has("redirect") ? 303 : 201;
  }

  module.provides("http", {
    route: {
      GET: handle,
      POST: handle,
      // Needs no key: it describes the API, it grants nothing.
      "GET /openapi.json": (event: HttpEvent) => {
        event.response.headers.content_type = "application/json";
        return JSON.stringify(invitesApiDocument(module.httpUrl(), module.host));
      },
    },
    // The body is never read; a small one (an empty form some clients send with POST) is accepted.
    max_content_size: 4096,
    // 201/303 carry a new invite's URL in Location, and the request a key in its URL.
    headers: SECRET_PAGE_HEADERS,
  });
}

export function command(args: string[], ctx: CommandContext): Promise<number> {
  return keysCommand(args, ctx);
}
