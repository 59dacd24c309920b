/**
 * mod_invites: invite tokens for account registration, password reset and contacts.
 * Other modules reach the API with `await module.depends("invites")`.
 * Differences from Prosody 0.12 (deliberate): expired invites are purged on a timer
 * (`invites_purge_interval`, seconds, default 3600; 0 disables), and get() also returns `jid`.
 */
import type { CommandContext, Module } from "prosody-ts";
import { generateCommand } from "./cli.js";
import { createInvitesApi } from "./invites.js";
import { addShellCommands } from "./shell.js";
import type { InvitesApi } from "./invites.js";

// `depends("invites")` is typed for every module (declaration merging): dependents need not
// import this folder.
declare module "prosody-ts" {
  interface ModuleExports {
    invites: InvitesApi;
  }
}

export default function (module: Module): void {
  const api = createInvitesApi(module);
  Object.assign(module.exports, api);
  // `prosodyctl shell invite …` (Prosody 13), run by the server for prosodyctl.
  if (module.server.processType === "server" && module.host !== "*") addShellCommands(module, api);

  // The server purges; a prosodyctl process is too short-lived to bother.
  const interval = module.getOptionNumber("invites_purge_interval", 3600) ?? 3600;
  if (module.server.processType === "server" && module.host !== "*" && interval > 0) {
    module.addTimer(Math.min(interval, 60), async () => {
      try {
        const n = await api.purgeExpired();
        if (n) module.log("info", "Purged %d expired invite entries", n);
      } catch (err) {
        module.log("warn", "Purging expired invites failed, will retry: %s", err);
      }
      return interval;
    });
  }
}

export function command(args: string[], ctx: CommandContext): Promise<number> {
  return generateCommand(args, ctx);
}
