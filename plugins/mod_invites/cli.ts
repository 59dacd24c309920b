/**
 * `prosodyctl mod_invites generate HOST [options]`: Prosody 0.12's output, messages and exit codes
 * (golden/10-cli-*.txt), except where Prosody prints a Lua traceback (one clear line instead, same
 * exit code) or says options are "mutually exclusive" yet creates the invite (we create nothing).
 */
import type { CommandContext } from "prosody-ts";
import { nodeprep } from "prosody-ts/util";
import { createInvitesApi } from "./invites.js";

const USAGE = "usage: prosodyctl mod_invites generate example.com";

const HELP = `usage: prosodyctl mod_invites generate DOMAIN --reset USERNAME
usage: prosodyctl mod_invites generate DOMAIN [--admin] [--role ROLE] [--group GROUPID]...

This command has two modes: password reset and new account.
If --reset is given, the command operates in password reset mode and in new account mode otherwise.

required arguments in password reset mode:

    --reset USERNAME  Generate a password reset link for the given USERNAME.

optional arguments in new account mode:

    --admin           Make the new user privileged
                      Equivalent to --role prosody:admin
    --role ROLE       Grant the given ROLE to the new user
    --group GROUPID   Add the user to the group with the given ID
                      Can be specified multiple times

--role and --admin override each other; the last one wins
--group can be specified multiple times; the user will be added to all groups.

--reset and the other options cannot be mixed.`;

/** `show HOST TOKEN` (our addition; Prosody 0.12 has no way to inspect an invite from the CLI). */
async function showCommand(args: string[], ctx: CommandContext): Promise<number> {
  const [, host, token] = args;
  if (!host || !token || !ctx.module.server.hostNames().includes(host)) {
    ctx.print("usage: prosodyctl mod_invites show example.com TOKEN");
    return 2;
  }
  const [info, err] = await createInvitesApi(ctx.module.context(host)).getAccountInviteInfo(token);
  if (!info) {
    ctx.print(`Error: ${err}`);
    return 1;
  }
  ctx.print(JSON.stringify(info));
  return 0;
}

export async function generateCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { print } = ctx;
  if (args[0] === "show") return showCommand(args, ctx);
  if (args[0] !== "generate" || args[1] === undefined) {
    print(USAGE);
    return 2;
  }
  const host = args[1];
  const server = ctx.module.server;
  if (!server.hostNames().includes(host)) {
    print(`Error: Host ${host} does not exist`);
    return 1;
  }

  let reset: string | undefined;
  let roles: Record<string, true> | undefined;
  const groups: string[] = [];
  for (let i = 2; i < args.length; i++) {
    const arg = args[i]!;
    switch (arg) {
      case "--reset": {
        const value = args[++i];
        if (value === undefined) {
          print("Error: --reset needs a USERNAME");
          return 1;
        }
        const user = nodeprep(value);
        if (!user) {
          print("Please supply a valid username to generate a reset link for");
          return 2;
        }
        reset = user;
        break;
      }
      case "--admin":
        roles = { "prosody:admin": true };
        break;
      case "--role": {
        const role = args[++i];
        if (role === undefined) {
          print("Please supply a role name");
          return 2;
        }
        roles = { [role]: true };
        break;
      }
      case "--group":
      case "-g": {
        const group = args[++i];
        if (group === undefined) {
          print("Please supply a group ID");
          return 2;
        }
        groups.push(group);
        break;
      }
      case "--help":
      case "-h":
        print(HELP);
        return 2;
      default:
        print(`unexpected argument: ${arg}`);
    }
  }

  const hostModule = ctx.module.context(host);
  // Modules that add to new invites (the landing page) must see invite-created on this host.
  const enabled = hostModule.getOptionInheritedSet("modules_enabled");
  const pageModule = hostModule.getOptionString("invites_page_module", "invites_page")!;
  if (enabled?.has(pageModule)) {
    await hostModule.depends(pageModule).catch((err) => hostModule.log("debug", "Could not load %s: %s", pageModule, err));
  }
  const invites = createInvitesApi(hostModule);

  let result;
  if (reset !== undefined) {
    if (roles) {
      print("--role/--admin and --reset are mutually exclusive");
      return 2;
    }
    if (groups.length) {
      // Prosody prints this and creates the reset invite anyway; we refuse.
      print("--group and --reset are mutually exclusive");
      return 2;
    }
    result = await invites.createAccountReset(reset);
  } else {
    const additional: Record<string, any> = { groups };
    if (roles) additional.roles = roles;
    result = await invites.createAccount(undefined, additional);
  }
  const [invite, err] = result;
  if (!invite) {
    print(`Error: could not create the invite (${err})`);
    return 1;
  }
  print(invite.landing_page ?? invite.uri);
  return 0;
}
