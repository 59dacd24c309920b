/**
 * The admin API's answer to a request mod_invites_api's authorize() refused. Snikket's module
 * answers 401 for a missing or invalid token and 403 for a token without the permission; we map
 * our key failures the same way, with a JSON error body.
 */
import { apiError, type ApiReply } from "prosody-ts/util";

export function authFailureReply(reason: string, scope: string, host: string): ApiReply {
  let reply: ApiReply;
  switch (reason) {
    case "scope":
      return apiError(403, "insufficient-scope", `This API key lacks the "${scope}" scope.`);
    case "expired":
      reply = apiError(401, "key-expired", "This API key has expired.");
      break;
    case "missing":
    case "malformed":
    case "unknown":
      reply = apiError(401, "not-authorized", "A valid API key is required (Authorization: Bearer <id>/<secret>).");
      break;
    default:
      // A reason added to authorize() later (its union may grow): refuse without claiming the
      // key is invalid, and name the reason.
      return apiError(403, "forbidden", `This API key may not do this now (${reason}).`);
  }
  // What Snikket's module meant to send (it names the header `authorization` by mistake).
  reply.headers = { www_authenticate: `Bearer realm="${host}/http_admin_api"` };
  return reply;
}
