/**
 * mod_invites_register, the account side only (no XMPP here: no preauth IQ, no stream features,
 * no roster subscriptions): what happens when somebody registers with an invite.
 *
 * - `user-registering`: without an invite and `registration_invite_only` (default true) the
 *   registration is refused ("Registration on this server is through invitation only"). With a
 *   password-reset invite (`additional_data.allow_reset = U`) only U may be used, and
 *   `event.allow_reset = U` is set; with a username-bound invite (jid `u@host`) only u may be
 *   registered. Prosody 0.12 enforces neither (a reset invite for alice registers any new
 *   account), which is the hole this closes.
 * - `user-registered`: consumes the invite (`use()`: a no-op for reusable ones and for an invite
 *   the registering module already claimed) and copies `additional_data.roles` into the new
 *   user's keyval store `roles` (`{ ["prosody:admin"] = true }`). If the invite cannot be consumed
 *   (already used by a concurrent registration, or storage failing), the new account is deleted
 *   again and the handler's promise rejects (Prosody keeps the account and leaves the invite valid).
 * - `user-password-reset`: consumes the invite.
 *
 * The handlers that store data return their promise: a module firing with `fireEventAsync` answers
 * after the writes are durable, and learns from the rejection that a registration was undone.
 */
import type { Module, ModuleExports, StoreRecord } from "prosody-ts";

type AuthProvider = ModuleExports["auth_internal_hashed"];
type ValidatedInvite = NonNullable<Awaited<ReturnType<ModuleExports["invites"]["get"]>>[0]>;

interface RegistrationEvent {
  username: string;
  host: string;
  allowed?: boolean;
  reason?: string;
  allow_reset?: string;
  validated_invite?: ValidatedInvite;
  session?: { validated_invite?: ValidatedInvite };
}

export default function (module: Module): void {
  const inviteOnly = module.getOptionBoolean("registration_invite_only", true);
  const inviteOf = (event: RegistrationEvent) => event.validated_invite ?? event.session?.validated_invite;

  module.hook("user-registering", (event: RegistrationEvent) => {
    const invite = inviteOf(event);
    if (!invite) {
      if (inviteOnly) {
        event.allowed = false;
        event.reason = "Registration on this server is through invitation only";
      }
      return undefined;
    }
    const resetFor = invite.resetUsername;
    if (resetFor !== undefined) {
      if (event.username !== resetFor) {
        event.allowed = false;
        event.reason = "This invite can only be used to reset the password of a different account.";
        return undefined;
      }
      event.allow_reset = resetFor;
      return undefined;
    }
    const bound = invite.boundUsername;
    if (bound !== undefined && event.username !== bound) {
      event.allowed = false;
      event.reason = "This invite is for a different username.";
    }
    return undefined;
  });

  module.hook("user-registered", (event: RegistrationEvent) => {
    const invite = inviteOf(event);
    if (!invite) return undefined;
    return track(event, async () => {
      // A module that claimed the invite before creating the account (mod_invites_register_web)
      // makes this a no-op. Otherwise the account exists already: if the invite cannot be
      // consumed now (used meanwhile by another registration, or storage failing), the account
      // must not stay, or one single-use invite would register several accounts.
      let used = false;
      let why = "the invite has already been used";
      try {
        used = await invite.use();
      } catch (err) {
        why = `the invite could not be consumed: ${err instanceof Error ? err.message : err}`;
      }
      if (!used) {
        await rollBack(event.username, why);
        throw new Error(`registration of ${event.username}@${module.host} undone: ${why}`);
      }
      await fireUsed(invite, event.username);
      if (invite.inviter) {
        module.log("debug", "Not creating roster subscriptions between %s and %s (no roster support)", invite.inviter, event.username);
      }
      const roles = rolesRecord(invite.additional_data?.roles);
      if (roles) {
        module.log("debug", "Importing roles from invite for %s", event.username);
        const store = await module.openStore("roles", "keyval");
        await store.set(event.username, roles);
      }
    });
  });

  module.hook("user-password-reset", (event: RegistrationEvent) => {
    const invite = inviteOf(event);
    if (!invite) return undefined;
    return track(event, async () => {
      if (await invite.use()) await fireUsed(invite, event.username);
    });
  });

  /**
   * "invite-used" once an invite is consumed by a registration or a password reset (metrics,
   * webhooks); awaited, so what its handlers store is durable before the registration answers.
   */
  function fireUsed(invite: ValidatedInvite, username: string): Promise<unknown> {
    return module.fireEventAsync("invite-used", { invite, username, host: module.host });
  }

  /** Deletes an account whose invite could not be consumed (through the host's auth module). */
  async function rollBack(username: string, why: string): Promise<void> {
    const authName = module.getOptionString("authentication", "internal_hashed") ?? "internal_hashed";
    try {
      const auth = await module.depends<AuthProvider>(`auth_${authName}`);
      const [ok, err] = await auth.deleteUser(username);
      if (!ok) throw new Error(err);
      module.log("warn", "Removed the new account %s: %s", username, why);
    } catch (err) {
      module.log("error", "Could not remove the new account %s (%s): %s", username, why, err instanceof Error ? err.message : err);
    }
  }

  /**
   * Runs `work` now and returns its promise, resolving to undefined so that an async dispatch
   * goes on to the next handler: the firing module awaits it and sees a failure (that is how it
   * learns a registration was undone). Failures are logged here too; a synchronous firer that
   * ignores the promise never leaves it unhandled.
   */
  function track(event: RegistrationEvent, work: () => Promise<unknown>): Promise<undefined> {
    const p = work().then(
      () => undefined,
      (err: unknown) => {
        module.log("error", "Handling the invite of %s failed: %s", event.username, err instanceof Error ? err.message : err);
        throw err;
      },
    );
    p.catch(() => undefined);
    return p;
  }
}



/**
 * The record to store in `roles`: Prosody 0.12's map (`{ role = true }`) as the invite carries
 * it; a 13.0-style array of role names becomes that map.
 */
function rolesRecord(roles: unknown): StoreRecord | undefined {
  if (Array.isArray(roles)) {
    const map: StoreRecord = {};
    for (const r of roles) if (typeof r === "string" && r !== "") map[r] = true;
    return Object.keys(map).length ? map : undefined;
  }
  if (roles && typeof roles === "object" && Object.keys(roles).length) return roles as StoreRecord;
  return undefined;
}
