/**
 * mod_invites_groups (prosody-modules, spec invites-suite §10): a new account joins the groups
 * its invite names. On `user-registered` with an invite, for each id in
 * `additional_data.groups` (in order), the membership is written exactly where Prosody's
 * mod_groups_internal keeps it, so a real Prosody with mod_groups_internal on the same data sees
 * the member:
 *
 *   keyval store `group_info`, owner = group id → `{ name, muc_jid?, mucs? }`   (read only: the group must exist)
 *   map store `groups`, owner = group id, key = username → `{}`                (written)
 *
 * A group id without a `group_info` record is skipped, as mod_groups_internal's add_member does
 * ("group-not-found"); then `group-user-added { id, user, host, group_info }` is fired for each
 * membership written, as add_member does. Nothing here ever fails the registration: every error
 * is logged and the next group is tried.
 *
 * Not done (we have no mod_groups_internal, no MUC, no rosters): no MUC affiliation or
 * `jabber:x:conference` invite for the group's chats, and no roster subscriptions between the
 * members. A real Prosody running mod_groups_internal on the same data makes the subscriptions
 * itself when the user next logs in (its `resource-bind` hook re-syncs the user's groups); the
 * MUC memberships it does not repair. No bundled module handles `group-user-added`.
 */
import type { Module, StoreRecord } from "prosody-ts";
import { cachedPromise } from "prosody-ts/util";

interface RegisteredEvent {
  username: string;
  host?: string;
  validated_invite?: { additional_data?: Record<string, unknown> };
  session?: { validated_invite?: RegisteredEvent["validated_invite"] };
}

export default function (module: Module): void {
  const stores = cachedPromise(() =>
    Promise.all([module.openStore("group_info", "keyval"), module.openStore("groups", "map")]).then(([info, members]) => ({ info, members })),
  );

  /** mod_groups_internal's add_member, storage part: false when the group does not exist. */
  async function addMember(groupId: string, username: string): Promise<StoreRecord | undefined> {
    const { info, members } = await stores();
    const groupInfo = await info.get(groupId);
    if (!groupInfo || Array.isArray(groupInfo)) return undefined;
    await members.set(groupId, username, {});
    return groupInfo;
  }

  module.hook("user-registered", (event: RegisteredEvent) => {
    const invite = event.validated_invite ?? event.session?.validated_invite;
    const groups = invite?.additional_data?.groups;
    if (!invite || !Array.isArray(groups) || groups.length === 0) return undefined;
    const username = event.username;
    module.log("debug", "Adding %s to groups from invite", username);
    // Returned so that a module firing with fireEventAsync answers once the memberships are
    // durable; it always resolves to undefined (the registration never fails here).
    return (async () => {
      for (const groupId of groups) {
        if (typeof groupId !== "string" || groupId === "") {
          module.log("warn", "Ignoring a group id that is not a string in the invite of %s", username);
          continue;
        }
        try {
          const groupInfo = await addMember(groupId, username);
          if (!groupInfo) {
            module.log("debug", "Not adding %s to group %s: group-not-found", username, groupId);
            continue;
          }
          await module.fireEventAsync("group-user-added", { id: groupId, user: username, host: module.host, group_info: groupInfo });
        } catch (err) {
          module.log("error", "Could not add %s to group %s: %s", username, groupId, err instanceof Error ? err.message : err);
        }
      }
      return undefined;
    })();
  });
}
