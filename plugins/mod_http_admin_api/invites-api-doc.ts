/**
 * mod_invites_api's endpoint, described for its OpenAPI document (served at
 * `/invites_api/openapi.json`). That module checks its own requests (it takes no body and no
 * parameters but `key` and `redirect`); these definitions only describe it.
 */

import type { ApiRoute } from "prosody-ts/util";

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
    503: { description: "Storage unavailable for now (Retry-After)." },
  },
});

export const INVITES_API_ROUTES: DocRoute[] = [describe("GET"), describe("POST")];
