/** `prosodyctl mod_invites_api create|list|delete HOST …`, byte-identical to prosody-modules'. */
import type { CommandContext } from "prosody-ts";
import { createKey, openKeyStore } from "./keys.js";

const USAGE = `Usage:

 prosodyctl mod_invites_api create NAME
 prosodyctl mod_invites_api delete KEY_ID
 prosodyctl mod_invites_api list
`;

export async function keysCommand(args: string[], ctx: CommandContext): Promise<number> {
  const { print } = ctx;
  // As in Prosody, the usage block does not stop the command: the host check follows.
  if (args.length < 2) print(USAGE);
  const [sub, host] = args;
  if (!host || host === "*" || !ctx.module.server.hostNames().includes(host)) {
    print("Error: please supply a valid host");
    return 1;
  }
  const module = ctx.module.context(host);
  switch (sub) {
    case "create": {
      print(await createKey(module, args[2]));
      return 0;
    }
    case "delete": {
      const keyId = args[2];
      const store = await openKeyStore(module);
      if (!keyId || (await store.get(null, keyId)) === undefined) {
        print("Error: key not found");
        return 1;
      }
      await store.set(null, keyId, undefined);
      return 0;
    }
    case "list": {
      const kv = await module.openStore("invite_api_keys", "keyval");
      const all = (await kv.get(null)) ?? {};
      for (const [keyId, record] of Object.entries(all)) {
        const name = record && typeof record === "object" && !Array.isArray(record) ? record.name : undefined;
        print(`${keyId}\t${typeof name === "string" ? name : "<unknown>"}`);
      }
      return 0;
    }
    default:
      print(`Unknown command - ${sub}`);
      return 0;
  }
}
