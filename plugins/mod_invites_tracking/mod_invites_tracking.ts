/**
 * mod_invites_tracking (prosody-modules, spec invites-suite §11): who invited whom. On
 * `user-registered` with an invite, keyval store `invites_tracking` gets, for the new username,
 * `{ invite_id = <token>, invite_source = <additional_data.source> }` (`invite_source` left out
 * when the invite has no source). A registration without an invite stores nothing. At load the
 * record of `" "` (not a valid username, so it cannot clash) is set to `{ version = "1" }`, the
 * format's version, as upstream.
 *
 * As upstream: the record stays when the account is deleted, and a password reset is not
 * recorded. The admin API reads this store (`source` / inviter chain).
 */
import type { Module, StoreRecord } from "prosody-ts";
import { cachedPromise } from "prosody-ts/util";

/** Not a valid localpart: the store's metadata lives under it. */
export const META_USER = " ";

interface RegisteredEvent {
  username: string;
  validated_invite?: { token?: unknown; additional_data?: Record<string, unknown> };
  session?: { validated_invite?: RegisteredEvent["validated_invite"] };
}

export default async function (module: Module): Promise<void> {
  const store = cachedPromise(() => module.openStore("invites_tracking", "keyval"));

  module.hook("user-registered", (event: RegisteredEvent) => {
    const invite = event.validated_invite ?? event.session?.validated_invite;
    if (!invite) {
      module.log("debug", "No invitation found for registration of %s", event.username);
      return undefined;
    }
    const record: StoreRecord = {};
    if (typeof invite.token === "string") record.invite_id = invite.token;
    const source = invite.additional_data?.source;
    if (typeof source === "string") record.invite_source = source;
    // Returned so that a module firing with fireEventAsync answers once the record is durable; a
    // failure is logged and never fails the registration.
    return store()
      .then((kv) => kv.set(event.username, record))
      .then(
        () => {
          module.log("debug", "Recorded that an invite from %s was used to create %s", source ?? "(no source)", event.username);
          return undefined;
        },
        (err: unknown) => {
          module.log("error", "Could not record the invite used by %s: %s", event.username, err instanceof Error ? err.message : err);
          return undefined;
        },
      );
  });

  if (module.host === "*") return;
  try {
    await (await store()).set(META_USER, { version: "1" });
  } catch (err) {
    module.log("warn", "Could not write the store version of invites_tracking: %s", err instanceof Error ? err.message : err);
  }
}
