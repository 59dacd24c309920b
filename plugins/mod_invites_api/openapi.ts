/**
 * This module's endpoint, described for its OpenAPI document (served at
 * `/invites_api/openapi.json`). The handler checks its own requests (it takes no body and no
 * parameters but `key` and `redirect`); these definitions only describe it.
 */

import { openApiDocument, type ApiRoute } from "prosody-ts/util";

type DocRoute = Omit<ApiRoute, "handler">;

const describe = (method: "GET" | "POST"): DocRoute => ({
  method,
  path: "",
  operationId: method === "GET" ? "createInviteGet" : "createInvitePost",
  summary: "Create an account invite",
  description:
    "Prosody's mod_invites_api: creates an account invite (source `api/token/<key id>`) and gives its web link, or its XMPP URI, in `Location`. " +
    "The key is sent as `Authorization: Bearer <id>/<secret>` or as the `key` query parameter.",
  scope: "create",
  query: {
    key: { type: "string", description: "The API key `<id>/<secret>`, when no Authorization header is sent." },
    redirect: { type: "string", description: "Any value: answer 303 instead of 201." },
  },
  responses: {
    201: { description: "Created; `Location` is the invite's link. Empty body.", headers: { Location: { description: "The invite link.", schema: { type: "string" } } } },
    303: { description: "Created (with `redirect`); `Location` is the invite's link.", headers: { Location: { description: "The invite link.", schema: { type: "string" } } } },
    401: { description: "An expired key (JSON error)." },
    403: { description: "No key or a wrong one (empty body, as Prosody), or a key without the `create` scope (JSON error)." },
    405: { description: "A method the key's `allowed_methods` excludes." },
    429: {
      description: "Too many requests from this address (`invites_api_rate_per_ip`) or with this key (`invites_api_rate`, or the key's own `--rate`): JSON error, `Retry-After` and `RateLimit` headers.",
      headers: { "Retry-After": { description: "Seconds to wait.", schema: { type: "string" } } },
    },
    503: { description: "Storage unavailable for now (Retry-After)." },
  },
});

export const INVITES_API_ROUTES: DocRoute[] = [describe("GET"), describe("POST")];

/** The document for an app served at `url` (its external URL, from module.httpUrl). */
export function invitesApiDocument(url: string, host: string): object {
  let server = "/";
  let prefix = "";
  try {
    const u = new URL(url);
    server = u.origin;
    prefix = u.pathname.replace(/\/+$/, "");
  } catch {
    // An unparsable URL (a misconfigured http_external_url): relative paths still describe the API.
  }
  return openApiDocument(INVITES_API_ROUTES, {
    title: `Invites API of ${host}`,
    version: "1.0.0",
    description: "prosody-modules' mod_invites_api: create an account invite with an API key.",
    server,
    prefix,
    routerErrors: false,
    security: {
      name: "apiKey",
      scheme: { type: "http", scheme: "bearer", description: "An API key `<id>/<secret>` made by `prosodyctl mod_invites_api create HOST NAME [--scope …]`." },
      describe: (scope) => (scope === "admin" ? "an API key with the `admin` scope" : `an API key with the \`${scope}\` (or \`admin\`) scope`),
    },
  });
}
