/**
 * The invite endpoints of the admin API (Snikket's mod_http_admin_api, spec §12) with our
 * extensions: max_uses/uses, filtered cursor listing, expire, and the tracking read side.
 */
import type { KeyvalStore, MapStore, StoreRecord } from "prosody-ts";
import { apiError, nodeprep, now, type ApiReply, type ApiRoute, type JsonSchema } from "prosody-ts/util";
import type { InvitesApi } from "../mod_invites/invites.js";
import { compareInvites, createdBy, decodeCursor, encodeCursor, INVITE_SCHEMA, inviteJson, isInviteRecord, type InviteRecord } from "./invite-json.js";
import { invitedByRoute } from "./tracking.js";

export interface KeyAuth {
  keyId: string;
  scopes: readonly string[];
}

export interface InviteRoutesContext {
  host: string;
  invites: InvitesApi;
  store: () => Promise<{ map: MapStore; kv: KeyvalStore }>;
  tracking: () => Promise<KeyvalStore>;
  /** invite_expiry: the TTL given to a reusable invite made without one. */
  defaultTtl: () => number;
  /** The path of the list endpoint as clients reach it (for `Link: rel="next"`). */
  listUrl: () => string;
}

/** Largest page; a request without limit or cursor gets every invite, as Snikket's API does. */
export const MAX_LIMIT = 1000;
const DEFAULT_PAGE = 100;
/** Ten years: longer TTLs are surely a unit mistake. */
const MAX_TTL = 10 * 366 * 86400;

const TTL: JsonSchema = { type: "integer", minimum: 1, maximum: MAX_TTL, description: "Seconds until it expires." };
const GROUPS: JsonSchema = { type: "array", items: { type: "string", minLength: 1, maxLength: 1023 }, maxItems: 100 };
const ROLES: JsonSchema = { type: "array", items: { type: "string", minLength: 1, maxLength: 1023 }, maxItems: 20, description: "Needs the `admin` scope when not empty." };
const NOTE: JsonSchema = { type: "string", maxLength: 4000 };
const MAX_USES: JsonSchema = { type: "integer", minimum: 1, maximum: 1_000_000, description: "Extension: the invite registers at most this many accounts (more than 1 makes it reusable)." };
const USERNAME: JsonSchema = { type: "string", minLength: 1, maxLength: 1023 };
const ID_PARAM = { id: { type: "string", minLength: 1, maxLength: 1023, description: "The invite's id (its token)." } };

const ok = (json: unknown): ApiReply => ({ status: 200, json });
const notFound = () => apiError(404, "item-not-found", "No such invite.");
const creationFailed = () => apiError(500, "internal-server-error", "The invite could not be stored.");
const INVITE_RESPONSE = { description: "The invite.", schema: INVITE_SCHEMA };
const NOT_FOUND = { description: "No such invite (or expired)." };

function source(auth: KeyAuth): string {
  return `api/token/${auth.keyId}/admin_api`;
}

/** additional_data roles as Prosody 0.12 stores them (a map), which 13.0 also reads. */
function rolesMap(roles: string[] | undefined): Record<string, true> | undefined {
  if (!roles || roles.length === 0) return undefined;
  return Object.fromEntries(roles.map((r) => [r, true as const]));
}

function clean<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

const needsAdminForRoles = ({ body }: { body: any }) => (Array.isArray(body?.roles) && body.roles.length > 0 ? ("admin" as const) : undefined);

export function inviteRoutes(ctx: InviteRoutesContext): ApiRoute<KeyAuth>[] {
  const { invites } = ctx;

  async function created(result: ReturnType<InvitesApi["createAccount"]>): Promise<ApiReply> {
    const [invite] = await result;
    if (!invite) return creationFailed();
    return ok(inviteJson(invite as unknown as InviteRecord, now()));
  }

  /** A reusable invite limited to max_uses: made through create_group, mod_invites' only reusable kind. */
  function limited(groups: string[], data: Record<string, any>, ttl: number | undefined, maxUses: number) {
    return invites.createGroup(groups, { ...data, max_uses: maxUses, uses: 0 }, ttl ?? ctx.defaultTtl());
  }

  async function allRecords(): Promise<InviteRecord[]> {
    const { kv } = await ctx.store();
    const all = (await kv.get(null)) ?? {};
    return Object.values(all as Record<string, unknown>).filter(isInviteRecord);
  }

  return [
    {
      method: "GET",
      path: "/invites",
      operationId: "listInvites",
      summary: "List pending invites",
      description:
        "Oldest first (created_at, then id). Without `limit` or `cursor` every matching invite is returned, as Snikket's API does; " +
        'with them, one page, and a `Link: <…>; rel="next"` header while more follow.',
      scope: "read",
      query: {
        type: { enum: ["register", "roster"], description: "Only invites of this `type`." },
        created_by: { type: "string", minLength: 1, description: "Only invites whose `source` is this, or made with this API key id." },
        limit: { type: "integer", minimum: 1, maximum: MAX_LIMIT, description: `Page size (at most ${MAX_LIMIT}; default ${DEFAULT_PAGE} with a cursor).` },
        cursor: { type: "string", minLength: 1, maxLength: 2048, description: "Opaque: from the previous page's `Link` header." },
        include_expired: { type: "boolean", description: "Also list expired invites still stored (e.g. expired through this API)." },
      },
      responses: {
        200: {
          description: "The invites.",
          schema: { type: "array", items: INVITE_SCHEMA },
          headers: { Link: { description: 'The next page: `<url>; rel="next"`.', schema: { type: "string" } } },
        },
      },
      handler: async ({ query }) => {
        const at = now();
        let after: { created_at: number; token: string } | undefined;
        if (query.cursor !== undefined) {
          after = decodeCursor(query.cursor);
          if (!after) return apiError(400, "bad-request", 'Invalid query parameter field "cursor".', "cursor");
        }
        const list = (await allRecords())
          .filter((r) => query.include_expired === true || r.expires > at)
          .filter((r) => query.type === undefined || r.type === query.type)
          .filter((r) => query.created_by === undefined || createdBy(r, query.created_by))
          .sort(compareInvites);
        const paged = query.limit !== undefined || after !== undefined;
        if (!paged) return ok(list.map((r) => inviteJson(r, at)));
        const start = after ? list.findIndex((r) => compareInvites(r, { ...r, created_at: after!.created_at, token: after!.token }) > 0) : 0;
        const limit: number = query.limit ?? DEFAULT_PAGE;
        const page = start < 0 ? [] : list.slice(start, start + limit);
        const headers: Record<string, string> = {};
        if (start >= 0 && start + limit < list.length) {
          const next = new URLSearchParams();
          for (const k of ["type", "created_by", "include_expired"]) if (query[k] !== undefined) next.set(k, String(query[k]));
          next.set("limit", String(limit));
          next.set("cursor", encodeCursor(page[page.length - 1]!));
          headers.link = `<${ctx.listUrl()}?${next}>; rel="next"`;
        }
        return { status: 200, json: page.map((r) => inviteJson(r, at)), headers };
      },
    },
    {
      method: "GET",
      path: "/invites/{id}",
      operationId: "getInvite",
      summary: "One invite",
      scope: "read",
      params: ID_PARAM,
      query: { include_expired: { type: "boolean", description: "Also answer for an expired invite still stored." } },
      responses: { 200: INVITE_RESPONSE, 404: NOT_FOUND },
      handler: async ({ params, query }) => {
        const { map } = await ctx.store();
        const r = await map.get(null, params.id!);
        const at = now();
        if (!isInviteRecord(r) || (r.expires < at && query.include_expired !== true)) return notFound();
        return ok(inviteJson(r, at));
      },
    },
    {
      method: "DELETE",
      path: "/invites/{id}",
      operationId: "deleteInvite",
      summary: "Delete an invite",
      description: "Answers the deleted invite. Unlike Snikket's API (always 200), an unknown id is a 404.",
      scope: "revoke",
      params: ID_PARAM,
      responses: { 200: INVITE_RESPONSE, 404: NOT_FOUND },
      handler: async ({ params }) => {
        const { map } = await ctx.store();
        const r = await map.take(null, params.id!);
        if (!isInviteRecord(r)) {
          if (r !== undefined) await map.set(null, params.id!, r);
          return notFound();
        }
        // A contact invite also has an entry under its inviter, which validates it for subscriptions.
        if (r.type === "roster") await map.set(r.jid.split("@")[0]!, r.token, undefined);
        return ok(inviteJson(r, now()));
      },
    },
    {
      method: "POST",
      path: "/invites/{id}/expire",
      operationId: "expireInvite",
      summary: "Expire an invite, keeping its record",
      description: "Extension. The invite stops working at once but stays listed (include_expired=true) for 30 days, with `revoked_at`.",
      scope: "revoke",
      params: ID_PARAM,
      responses: { 200: INVITE_RESPONSE, 404: NOT_FOUND, 409: { description: "Already expired." } },
      handler: async ({ params }) => {
        const { map } = await ctx.store();
        const at = now();
        const taken = await map.take(null, params.id!);
        if (!isInviteRecord(taken)) {
          if (taken !== undefined) await map.set(null, params.id!, taken);
          return notFound();
        }
        const r: InviteRecord = taken;
        if (r.expires < at) {
          await map.set(null, r.token, r as unknown as StoreRecord);
          return apiError(409, "conflict", "This invite has already expired.");
        }
        const expired: InviteRecord = { ...r, expires: at - 1, additional_data: { ...(r.additional_data ?? {}), revoked_at: at } };
        await map.set(null, r.token, expired as unknown as StoreRecord);
        if (r.type === "roster") {
          const inviter = r.jid.split("@")[0]!;
          if ((await map.get(inviter, r.token)) !== undefined) await map.set(inviter, r.token, at - 1);
        }
        return ok(inviteJson(expired, at));
      },
    },
    {
      method: "POST",
      path: "/invites/account",
      operationId: "createAccountInvite",
      summary: "Create an account invite",
      scope: "create",
      scopeFor: needsAdminForRoles,
      body: {
        required: false,
        schema: {
          type: "object",
          properties: { username: USERNAME, ttl: TTL, groups: GROUPS, roles: ROLES, note: NOTE, max_uses: MAX_USES },
        },
      },
      responses: { 200: INVITE_RESPONSE },
      handler: ({ body, auth }) => {
        const b = body ?? {};
        let username: string | undefined;
        if (b.username !== undefined) {
          username = nodeprep(b.username) ?? undefined;
          if (!username) return apiError(400, "bad-request", 'Invalid request body field "username": not a valid username.', "username");
        }
        const data = clean({ source: source(auth), groups: b.groups, roles: rolesMap(b.roles), note: b.note });
        if (b.max_uses !== undefined && b.max_uses > 1) {
          if (username) return apiError(400, "bad-request", 'Invalid request body field "max_uses": an invite for one username registers one account.', "max_uses");
          return created(limited(b.groups ?? [], data, b.ttl, b.max_uses));
        }
        return created(invites.createAccount(username, data, b.ttl));
      },
    },
    {
      method: "POST",
      path: "/invites/group",
      operationId: "createGroupInvite",
      summary: "Create a group invite",
      description:
        "Reusable when `ttl` or `max_uses` is given (else single-use, as upstream). `groups` may be empty, as upstream allows (Snikket's portal sends the list it has). " +
        "`group_options` (auto-creating a group) is not implemented: 501.",
      scope: "create",
      scopeFor: needsAdminForRoles,
      body: {
        required: true,
        schema: {
          type: "object",
          required: ["groups"],
          properties: { groups: GROUPS, ttl: TTL, roles: ROLES, note: NOTE, max_uses: MAX_USES, group_options: { type: "object" } },
        },
      },
      responses: { 200: INVITE_RESPONSE, 501: { description: "`group_options` given (not implemented)." } },
      handler: ({ body: b, auth }) => {
        if (b.group_options !== undefined) return apiError(501, "feature-not-implemented", "Creating a group from group_options is not implemented.");
        const data = clean({ source: source(auth), roles: rolesMap(b.roles), note: b.note });
        if (b.max_uses !== undefined) return created(limited(b.groups, data, b.ttl, b.max_uses));
        return created(invites.createGroup(b.groups, data, b.ttl));
      },
    },
    {
      method: "POST",
      path: "/invites/reset",
      operationId: "createResetInvite",
      summary: "Create a password reset invite",
      description: "Needs the `admin` scope: a reset link takes over the account.",
      scope: "admin",
      body: { required: true, schema: { type: "object", required: ["username"], properties: { username: USERNAME, ttl: TTL } } },
      responses: { 200: INVITE_RESPONSE },
      handler: ({ body: b }) => {
        const username = nodeprep(b.username);
        if (!username) return apiError(400, "bad-request", 'Invalid request body field "username": not a valid username.', "username");
        return created(invites.createAccountReset(username, b.ttl));
      },
    },
    invitedByRoute(ctx),
  ];
}

/** Any other POST /invites/<type>: not in the document (a template clashing with /invites/{id}). */
export const unknownTypeRoute: ApiRoute<KeyAuth> = {
  method: "POST",
  path: "/invites/{type}",
  operationId: "unknownInviteType",
  hidden: true,
  summary: "Unknown invite type",
  scope: "create",
  params: { type: { type: "string" } },
  body: { required: false, schema: {} },
  responses: {},
  handler: ({ params }) => apiError(400, "unknown-invite-type", `Unknown invite type "${params.type}": use account, group or reset.`, "type"),
};
