/**
 * mod_invites_default_group (Snikket, spec invites-suite §13.1): contact invites made in an app
 * put the new account into the default circle. On `invite-created` (fired before the invite is
 * stored, so the change is saved), a `roster` invite without `additional_data.groups` gets
 * `groups = { "default" }`.
 *
 * Deliberate difference from Snikket's module: the groups are added to the invite's existing
 * `additional_data` (keeping `source`, `roles`, `note`…). Snikket's guard tests a misspelled field,
 * so it always replaces `additional_data` with a new table and the inviter recorded in `source`
 * is lost (mod_invites_tracking then stores no source for app-made invites).
 */
import type { Module } from "prosody-ts";

interface CreatedInvite {
  type?: unknown;
  additional_data?: Record<string, unknown>;
}

export default function (module: Module): void {
  module.hook("invite-created", (invite: CreatedInvite) => {
    if (invite.type !== "roster") return undefined;
    const data = invite.additional_data;
    if (data && typeof data === "object" && data.groups !== undefined && data.groups !== null) return undefined;
    invite.additional_data = { ...(data && typeof data === "object" ? data : {}), groups: ["default"] };
    return undefined;
  });
}
