/**
 * The read side of mod_invites_tracking (spec §11): keyval store `invites_tracking`, owner = the
 * new account's username → `{ invite_id, invite_source }`. From a user, the chain of who invited
 * whom is followed while an invite's source names a local account (`user@host` or
 * `user@host/resource`, as ad-hoc commands and Snikket's admin API write it).
 */
import { apiError, nodeprep, type ApiRoute } from "prosody-ts/util";
import type { InviteRoutesContext, KeyAuth } from "./invite-routes.js";

/** Longest chain answered: deep enough for any real invite tree, bounded against loops and cost. */
export const MAX_CHAIN = 20;

/** The local account an invite source names, if any. */
export function inviterOf(source: unknown, host: string): string | undefined {
  if (typeof source !== "string") return undefined;
  const m = /^([^@/]+)@([^/]+)(?:\/.*)?$/s.exec(source);
  if (!m || m[2]!.toLowerCase() !== host.toLowerCase()) return undefined;
  return nodeprep(m[1]!) ?? undefined;
}

const LINK_SCHEMA = {
  type: "object",
  required: ["user", "invite_id", "source", "inviter"],
  properties: {
    user: { type: "string", description: "The account this link is about." },
    invite_id: { type: ["string", "null"], description: "The invite it registered with." },
    source: { type: ["string", "null"], description: "That invite's source." },
    inviter: { type: ["string", "null"], description: "The local account the source names (the next link), if any." },
  },
};

export function invitedByRoute(ctx: InviteRoutesContext): ApiRoute<KeyAuth> {
  return {
    method: "GET",
    path: "/users/{username}/invited_by",
    operationId: "getInvitedBy",
    summary: "Who invited a user, and who invited them",
    description: `From mod_invites_tracking's records: the user first, then each inviter, at most ${MAX_CHAIN} links; stops at a source that is no local account (an API key) or at a loop.`,
    scope: "read",
    params: { username: { type: "string", minLength: 1, maxLength: 1023 } },
    responses: {
      200: { description: "The chain, nearest first.", schema: { type: "array", items: LINK_SCHEMA, maxItems: MAX_CHAIN } },
      404: { description: "No tracking record for this user." },
    },
    handler: async ({ params }) => {
      const store = await ctx.tracking();
      let user: string | undefined = nodeprep(params.username!) ?? undefined;
      if (!user) return apiError(400, "bad-request", 'Invalid path parameter field "username": not a valid username.', "username");
      const chain: Array<Record<string, string | null>> = [];
      const seen = new Set<string>();
      while (user !== undefined && chain.length < MAX_CHAIN && !seen.has(user)) {
        seen.add(user);
        const rec = (await store.get(user)) as Record<string, unknown> | undefined;
        if (!rec || typeof rec !== "object") break;
        const source = typeof rec.invite_source === "string" ? rec.invite_source : null;
        const inviter = inviterOf(source, ctx.host) ?? null;
        chain.push({ user, invite_id: typeof rec.invite_id === "string" ? rec.invite_id : null, source, inviter });
        user = inviter ?? undefined;
      }
      if (chain.length === 0) return apiError(404, "item-not-found", "No invite is recorded for this user.");
      return { status: 200, json: chain };
    },
  };
}
