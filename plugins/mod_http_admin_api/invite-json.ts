/**
 * The invite object of the admin API (Snikket's mod_http_admin_api fields, plus our extensions
 * max_uses, uses, expired, revoked_at), its JSON schema, and listing order / cursors.
 */
import type { JsonSchema } from "prosody-ts/util";

/** A stored host-wide invite record (mod_invites' `invite_token` map store). */
export interface InviteRecord {
  type: "register" | "roster";
  jid: string;
  token: string;
  uri: string;
  created_at: number;
  expires: number;
  reusable?: boolean;
  landing_page?: string;
  additional_data?: Record<string, any>;
}

const nullable = (type: string, description?: string): JsonSchema =>
  description === undefined ? { type: [type, "null"] } : { type: [type, "null"], description };

export const INVITE_SCHEMA: JsonSchema = {
  type: "object",
  required: ["id", "type", "reusable", "inviter", "jid", "uri", "landing_page", "created_at", "expires", "groups", "roles", "source", "reset", "note", "max_uses", "uses", "expired", "revoked_at"],
  properties: {
    id: { type: "string", description: "The invite token." },
    type: { enum: ["register", "roster"], description: "`register` (account, group or reset invite) or `roster` (contact invite allowing registration)." },
    reusable: { type: "boolean" },
    inviter: { type: "null", description: "Always null, as in Snikket's API (the record has no inviter)." },
    jid: { type: "string", description: "The host, or `user@host` for an invite bound to a username or a reset." },
    uri: { type: "string", description: "The XMPP URI (XEP-0401)." },
    landing_page: nullable("string", "The web link, when a landing page module is loaded."),
    created_at: { type: "integer", description: "Unix seconds." },
    expires: { type: "integer", description: "Unix seconds." },
    groups: { type: "array", items: { type: "string" } },
    roles: { type: "array", items: { type: "string" } },
    source: nullable("string", "Who made it: `api/token/<key id>/admin_api` for this API, `api/token/<key id>` for mod_invites_api, a JID for ad-hoc commands."),
    reset: { type: "boolean", description: "A password reset invite." },
    note: nullable("string"),
    max_uses: nullable("integer", "Extension: registrations a reusable invite allows (null: unlimited or single-use)."),
    uses: { type: "integer", description: "Extension: registrations counted so far (only invites with max_uses are counted)." },
    expired: { type: "boolean", description: "Extension: past its expiry (listed only with include_expired=true)." },
    revoked_at: nullable("integer", "Extension: when it was expired through POST /invites/{id}/expire."),
  },
};

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [];
}

/** Roles as a list: 0.12 stores a map `{ role = true }`, 13.0 a list. */
export function roleList(v: unknown): string[] {
  if (Array.isArray(v)) return strings(v);
  if (v && typeof v === "object") return Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] === true);
  return [];
}

const int = (v: unknown): number | null => (typeof v === "number" && Number.isInteger(v) ? v : null);

export function inviteJson(r: InviteRecord, at: number): Record<string, unknown> {
  const d = r.additional_data ?? {};
  return {
    id: r.token,
    type: r.type,
    reusable: r.reusable === true,
    inviter: null,
    jid: r.jid,
    uri: r.uri,
    landing_page: typeof r.landing_page === "string" ? r.landing_page : null,
    created_at: r.created_at,
    expires: r.expires,
    groups: strings(d.groups),
    roles: roleList(d.roles),
    source: typeof d.source === "string" ? d.source : null,
    reset: d.allow_reset !== undefined && d.allow_reset !== null && d.allow_reset !== false,
    note: typeof d.note === "string" ? d.note : null,
    max_uses: int(d.max_uses),
    uses: int(d.uses) ?? 0,
    expired: at > r.expires,
    revoked_at: int(d.revoked_at),
  };
}

/** Whether a stored value looks like a host-wide invite record (anything else in the store is skipped). */
export function isInviteRecord(v: unknown): v is InviteRecord {
  if (!v || typeof v !== "object") return false;
  const r = v as Record<string, unknown>;
  return typeof r.token === "string" && typeof r.jid === "string" && typeof r.created_at === "number" && typeof r.expires === "number";
}

/** Listing order: created_at, then id (tokens are unique, so the order is total and stable). */
export function compareInvites(a: InviteRecord, b: InviteRecord): number {
  return a.created_at - b.created_at || (a.token < b.token ? -1 : a.token > b.token ? 1 : 0);
}

/** An opaque cursor: the position (created_at, id) of the last invite of a page. */
export function encodeCursor(r: InviteRecord): string {
  return Buffer.from(JSON.stringify([r.created_at, r.token])).toString("base64url");
}

export function decodeCursor(s: string): { created_at: number; token: string } | undefined {
  try {
    const v = JSON.parse(Buffer.from(s, "base64url").toString("utf8"));
    if (Array.isArray(v) && v.length === 2 && Number.isInteger(v[0]) && typeof v[1] === "string") return { created_at: v[0], token: v[1] };
  } catch {
    /* not ours */
  }
  return undefined;
}

/** Whether an invite was made by `who`: its exact source, or the key id of an API key that made it. */
export function createdBy(r: InviteRecord, who: string): boolean {
  const source = r.additional_data?.source;
  if (typeof source !== "string") return false;
  return source === who || source === `api/token/${who}` || source === `api/token/${who}/admin_api`;
}
