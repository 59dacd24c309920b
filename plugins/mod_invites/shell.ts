/**
 * Prosody 13's shell commands for invites (`prosodyctl shell invite …`, section "invite"): their
 * arguments, flags, lines and "OK:"/"Error:" messages, on the invites of the running server.
 * Differences from 13.0: roles are stored as Prosody 0.12's map (`{ ["prosody:admin"] = true }`),
 * which the 0.12 sharing this data reads (13.0 stores an ordered list), so with several roles
 * `show` cannot tell which one came first; `--group` without invites_groups enabled is refused
 * ("Unknown parameter"), where 13.0 stores `groups = true`; a duration in years is whole seconds.
 */
import type { Module, ShellCommand, ShellSession } from "prosody-ts";
import { parseDuration } from "prosody-ts/util";
import type { Invite, InvitesApi } from "./invites.js";

const SECTION = { section: "invite", section_desc: "Create and manage invitations" } as const;

type Reply = [boolean | undefined, string?];

// In prosody-ts/util since mod_invites_api's --expires-after parses durations too.
export { parseDuration };

/** os.date("%Y-%m-%d %T") in the server's time zone; `sep` "T" for the list's column. */
export function localTime(seconds: number, sep = " "): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}${sep}${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Username and domain of a JID (no resource). */
function splitJid(jid: string): { user?: string; host: string } {
  const bare = jid.split("/")[0]!;
  const at = bare.indexOf("@");
  return at < 0 ? { host: bare } : { user: bare.slice(0, at), host: bare.slice(at + 1) };
}

/** Names in a list (13.0) or a set-like map (0.12's roles, an empty Lua table). */
function namesOf(roles: unknown): string[] {
  if (Array.isArray(roles)) return roles.map(String);
  if (roles && typeof roles === "object") return Object.keys(roles).filter((k) => (roles as Record<string, unknown>)[k]);
  return [];
}

function describe(invite: Invite, long: boolean): string {
  if (invite.type === "roster") return long ? `Invitation to register and become a contact of ${invite.jid}` : `Contact with ${invite.jid}`;
  if (invite.type !== "register") return "Unknown invitation type";
  const { user, host } = splitJid(invite.jid);
  const reset = invite.additional_data?.allow_reset;
  if (reset) return `Password reset for ${reset}@${host}`;
  if (user) return long ? `Invitation to register on ${host} with username '${user}'` : `Register on ${host} with username ${user}`;
  return long ? `Invitation to register on ${host}` : `Register on ${host}`;
}

/** Prosody's util.human.io table: fixed columns, the last takes the rest; " | " between. */
function tableRow(widths: number[], cells: string[]): string {
  return cells
    .map((cell, i) => {
      const w = widths[i]!;
      const chars = [...cell];
      if (chars.length > w) return w <= 1 ? "…" : `${chars.slice(0, w - 1).join("")}…`;
      return cell + " ".repeat(w - chars.length);
    })
    .join(" | ");
}

function listRows(session: ShellSession, invites: Invite[]): string[] {
  // Token 24, Expires 20, Description the rest of the width less two " | ".
  const widths = [24, 20, session.width - 2 * 3 - 24 - 20];
  const rows = [tableRow(widths, ["Token", "Expires", "Description"])];
  for (const inv of invites) rows.push(tableRow(widths, [inv.token, localTime(inv.expires, "T"), describe(inv, false)]));
  return rows;
}

/** Adds the invite commands, served by this host's invites. */
export function addShellCommands(module: Module, api: InvitesApi): void {
  const groupsEnabled = module.getOptionInheritedSet("modules_enabled")?.has("invites_groups") ?? false;
  const ttlFrom = (opts: Record<string, unknown>, fallback?: string): number | undefined | Reply => {
    const text = typeof opts.expires_after === "string" ? opts.expires_after : fallback;
    if (text === undefined) return undefined;
    const ttl = parseDuration(text);
    return ttl === undefined ? [false, `Unable to parse duration: ${text}`] : ttl;
  };
  const commands: ShellCommand[] = [
    {
      ...SECTION,
      name: "create_account",
      desc: "Create an invitation to make an account on this server with the specified JID (supply only a hostname to allow any username)",
      args: [{ name: "user_jid" }],
      host_selector: "user_jid",
      flags: { array_params: { role: true, group: groupsEnabled }, value_params: { expires_after: true } },
      async handler(_session, [jid], opts) {
        if (!groupsEnabled && opts.group !== undefined) return [false, "Unknown parameter: --group"];
        const roles = Array.isArray(opts.role) ? opts.role.map(String) : [];
        if (opts.admin) roles.unshift("prosody:admin");
        const ttl = ttlFrom(opts);
        if (Array.isArray(ttl)) return ttl;
        const additional: Record<string, unknown> = { groups: Array.isArray(opts.group) ? opts.group.map(String) : [] };
        if (roles.length) additional.roles = Object.fromEntries(roles.map((r) => [r, true]));
        const [invite, err] = await api.createAccount(splitJid(jid!).user ?? null, additional, ttl);
        return invite ? [true, invite.landing_page ?? invite.uri] : [false, err];
      },
    },
    {
      ...SECTION,
      name: "create_reset",
      desc: "Create a password reset link for the specified user",
      args: [{ name: "user_jid" }],
      host_selector: "user_jid",
      flags: { value_params: { expires_after: true } },
      async handler(session, [jid], opts) {
        const { user } = splitJid(jid!);
        if (!user) return [false, "Supply the JID of the account you want to generate a password reset for"];
        const ttl = ttlFrom(opts, "1d");
        if (Array.isArray(ttl)) return ttl;
        const [invite, err] = await api.createAccountReset(user, ttl);
        if (!invite) return [false, err];
        session.print(invite.landing_page ?? invite.uri);
        return [true, `Password reset link for ${jid} valid until ${localTime(invite.expires)}`];
      },
    },
    {
      ...SECTION,
      name: "create_contact",
      desc: "Create an invitation to become contacts with the specified user",
      args: [{ name: "user_jid" }],
      host_selector: "user_jid",
      flags: { value_params: { expires_after: true }, kv_params: { allow_registration: true } },
      async handler(_session, [jid], opts) {
        const { user } = splitJid(jid!);
        if (!user) return [false, "Supply the JID of the account you want the recipient to become a contact of"];
        const ttl = ttlFrom(opts);
        if (Array.isArray(ttl)) return ttl;
        const [invite, err] = await api.createContact(user, !!opts.allow_registration, undefined, ttl);
        return invite ? [true, invite.landing_page ?? invite.uri] : [false, err];
      },
    },
    {
      ...SECTION,
      name: "show",
      desc: "Show details of an account invitation token",
      args: [{ name: "host" }, { name: "token" }],
      host_selector: "host",
      async handler(session, [, token]) {
        const [invite, err] = await api.getAccountInviteInfo(token ?? "");
        if (!invite) return [false, token ? err : "no-token"];
        const print = session.print;
        print(describe(invite, true));
        if (typeof invite.inviter === "string") print("Creator:", invite.inviter);
        print("Created:", localTime(invite.created_at));
        print("Expires:", localTime(invite.expires));
        print("");
        if (invite.uri) print("XMPP URI:", invite.uri);
        if (invite.landing_page) print("Web link:", invite.landing_page);
        const data = invite.additional_data;
        if (data) {
          print("");
          const roles = namesOf(data.roles);
          if (roles[0]) print("Role:", roles[0]);
          if (roles.length > 1) print("Secondary roles:", roles.slice(1).join(", "));
          if (data.groups) print("Groups:", namesOf(data.groups).join(", "));
          if (data.note) print("Comment:", data.note);
        }
        return [true, "Invitation valid"];
      },
    },
    {
      ...SECTION,
      name: "delete",
      desc: "Delete/revoke an invitation token",
      args: [{ name: "host" }, { name: "token" }],
      host_selector: "host",
      async handler(_session, [, token]) {
        if (!token) return [false, "no-token"];
        const [, err] = await api.deleteAccountInvite(token);
        return err ? [false, err] : [true, "Invitation deleted"];
      },
    },
    {
      ...SECTION,
      name: "list",
      desc: "List pending invitations which allow account registration",
      args: [{ name: "host" }],
      host_selector: "host",
      async handler(session) {
        const pending = (await api.pendingAccountInvites()).map(([, inv]) => inv).sort((a, b) => a.created_at - b.created_at);
        for (const row of listRows(session, pending)) session.print(row);
        return [true, `${pending.length} pending invites`];
      },
    },
  ];
  for (const cmd of commands) module.addItem("shell-command", cmd);
}
