/**
 * What each webhook event says (the `data` of the JSON body). The invite's `id` is its token, as
 * Snikket's admin API calls it; its URI and landing page are not sent (they only repeat the token).
 */
export interface InviteRecord {
  token?: unknown;
  type?: unknown;
  jid?: unknown;
  created_at?: unknown;
  expires?: unknown;
  reusable?: unknown;
  additional_data?: Record<string, unknown>;
}

/** Snikket's admin API kinds: account, reset, group (reusable), contact (roster). */
function kind(invite: InviteRecord): string {
  if (invite.type === "roster") return "contact";
  if (invite.additional_data && typeof invite.additional_data.allow_reset === "string") return "reset";
  if (invite.reusable === true) return "group";
  return "account";
}

function clean(o: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

export function inviteView(invite: InviteRecord): Record<string, unknown> {
  const extra = invite.additional_data ?? {};
  return clean({
    id: typeof invite.token === "string" ? invite.token : undefined,
    type: kind(invite),
    jid: typeof invite.jid === "string" ? invite.jid : undefined,
    created_at: typeof invite.created_at === "number" ? invite.created_at : undefined,
    expires: typeof invite.expires === "number" ? invite.expires : undefined,
    reusable: invite.reusable === true,
    source: typeof extra.source === "string" ? extra.source : undefined,
    groups: Array.isArray(extra.groups) ? extra.groups : undefined,
    roles: extra.roles && typeof extra.roles === "object" ? extra.roles : undefined,
  });
}

/** `invite-used`: `{ invite, username, host }` as mod_invites_register fires it. */
export function usedView(e: { invite?: InviteRecord; username?: unknown; host?: unknown }): Record<string, unknown> {
  const username = typeof e.username === "string" ? e.username : undefined;
  return clean({
    invite: e.invite ? inviteView(e.invite) : undefined,
    username,
    jid: username && typeof e.host === "string" ? `${username}@${e.host}` : undefined,
  });
}

/** `user-registered`: `{ username, host, source, validated_invite }`. */
export function registeredView(e: { username?: unknown; host?: unknown; source?: unknown; validated_invite?: InviteRecord }): Record<string, unknown> {
  const username = typeof e.username === "string" ? e.username : undefined;
  return clean({
    username,
    jid: username && typeof e.host === "string" ? `${username}@${e.host}` : undefined,
    source: typeof e.source === "string" ? e.source : undefined,
    invite_id: typeof e.validated_invite?.token === "string" ? e.validated_invite.token : undefined,
  });
}
