/**
 * `prosodyctl mod_invites_api create|list|delete|rotate HOST …`. Without our flags, byte-identical
 * to prosody-modules' (create/list/delete, its usage block and messages).
 *
 * Our extensions: `create` takes --scope (repeatable, or comma-separated), --expires-after DURATION
 * (Prosody's duration syntax) and --rate N/PERIOD; `list` adds columns once any key has our fields,
 * or with --long (see listLines); `rotate` gives a key a new secret (rotateKey).
 */
import type { CommandContext, Module } from "prosody-ts";
import { now, parseDuration, parseRate } from "prosody-ts/util";
import { SCOPES, isScope, scopesOf } from "./authorize.js";
import { createKey, openKeyStore, rotateKey, type ApiKeyRecord, type KeyOptions } from "./keys.js";
import { keyUsage } from "./usage.js";

const USAGE = `Usage:

 prosodyctl mod_invites_api create NAME
 prosodyctl mod_invites_api delete KEY_ID
 prosodyctl mod_invites_api list
`;

/** Printed after a usage error in our extensions (Prosody's block stays as it was for the rest). */
const LONG_USAGE = `Usage:

 prosodyctl mod_invites_api create HOST [NAME] [--scope ${SCOPES.join("|")} …] [--expires-after DURATION] [--rate N/PERIOD]
 prosodyctl mod_invites_api delete HOST KEY_ID
 prosodyctl mod_invites_api list HOST [--long]
 prosodyctl mod_invites_api rotate HOST KEY_ID
`;

/** Default grace for a rotated key's old secret: one day. */
const DEFAULT_GRACE = 86400;

class UsageError extends Error {}

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
  try {
    switch (sub) {
      case "create": {
        const { name, options } = parseCreate(args.slice(2));
        print(await createKey(module, name, options));
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
        await keyUsage(module).forget(keyId);
        return 0;
      }
      case "list": {
        // Other words are ignored, as Prosody does; only an unknown flag is an error.
        const flags = args.slice(2).filter((w) => w.startsWith("-"));
        const bad = flags.find((f) => f !== "--long" && f !== "-l");
        if (bad !== undefined) throw new UsageError(`unknown option for list: ${bad}`);
        for (const line of await listLines(module, flags.length > 0)) print(line);
        return 0;
      }
      case "rotate": {
        const keyId = args[2];
        if (args.length > 3) throw new UsageError(`rotate takes one KEY_ID, got also: ${args.slice(3).join(" ")}`);
        const key = keyId ? await rotateKey(module, keyId, graceOf(module)) : undefined;
        if (!key) {
          print("Error: key not found");
          return 1;
        }
        print(key);
        return 0;
      }
      default:
        print(`Unknown command - ${sub}`);
        return 0;
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    print(`Error: ${e.message}`);
    print(LONG_USAGE);
    return 1;
  }
}

/**
 * NAME and flags of `create`. As in Prosody, words after NAME that are not flags are ignored; a
 * NAME beginning with "--" can follow a "--". Flags take `--flag VALUE` or `--flag=VALUE`.
 */
function parseCreate(words: string[]): { name?: string; options: KeyOptions } {
  let name: string | undefined;
  const options: KeyOptions = {};
  let flagsDone = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (flagsDone || !word.startsWith("--")) {
      name ??= word;
      continue;
    }
    if (word === "--") {
      flagsDone = true;
      continue;
    }
    const eq = word.indexOf("=");
    const flag = eq < 0 ? word : word.slice(0, eq);
    if (flag !== "--scope" && flag !== "--expires-after" && flag !== "--rate") throw new UsageError(`unknown option ${flag}`);
    const value = eq < 0 ? words[++i] : word.slice(eq + 1);
    if (value === undefined || value === "") throw new UsageError(`${flag} needs a value`);
    if (flag === "--scope") {
      for (const scope of value.split(",")) {
        if (!isScope(scope)) throw new UsageError(`unknown scope "${scope}" (scopes: ${SCOPES.join(", ")})`);
        options.scopes = [...new Set([...(options.scopes ?? []), scope])];
      }
    } else if (flag === "--expires-after") {
      const seconds = parseDuration(value);
      if (seconds === undefined || seconds <= 0) throw new UsageError(`unable to parse duration: ${value} (e.g. 30d, 12h, 1y)`);
      options.expires = now() + seconds;
    } else {
      if (!parseRate(value)) throw new UsageError(`unable to parse rate: ${value} (e.g. 100/minute, 10/s, 1000/day)`);
      options.rate = value.trim();
    }
  }
  return { name, options };
}

/** invites_api_rotation_grace: seconds or a duration ("1d"); a bad value is an error, not 0. */
export function graceOf(module: Module): number {
  const v = module.getOption("invites_api_rotation_grace", DEFAULT_GRACE);
  const seconds = typeof v === "number" ? v : typeof v === "string" ? (/^\s*\d+\s*$/.test(v) ? Number(v) : parseDuration(v)) : undefined;
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    throw new UsageError(`invites_api_rotation_grace must be a number of seconds or a duration such as "1d", not ${JSON.stringify(v)}`);
  }
  return Math.floor(seconds);
}

/** Whether a record carries any of our fields (a Prosody-made key carries none). */
function extended(record: ApiKeyRecord): boolean {
  return record.scopes !== undefined || record.expires !== undefined || record.rate !== undefined || record.previous_secret_hash !== undefined || record.rotated_at !== undefined;
}

const isoTime = (t: number) => new Date(t * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * Prosody's `id<TAB>name` lines; once any key has our fields (or with --long), every line gets four
 * more TAB-separated columns: scopes (comma-separated), expiry (UTC, or "never"), rate ("default"
 * for the host's), last use (UTC to the minute, or "never"); then tabs and newlines in names are
 * shown as \t and \n so that columns stay columns.
 */
async function listLines(module: Module, long: boolean): Promise<string[]> {
  const kv = await module.openStore("invite_api_keys", "keyval");
  const all = (await kv.get(null)) ?? {};
  const records = Object.entries(all).map(([keyId, v]) => [keyId, v && typeof v === "object" && !Array.isArray(v) ? (v as unknown as ApiKeyRecord) : undefined] as const);
  const wide = long || records.some(([, r]) => r !== undefined && extended(r));
  const used = wide ? await keyUsage(module).all() : new Map<string, number>();
  return records.map(([keyId, record]) => {
    const name = typeof record?.name === "string" ? record.name : "<unknown>";
    if (!wide) return `${keyId}\t${name}`;
    const scopes = record ? scopesOf(record).join(",") || "none" : "none";
    const expires = typeof record?.expires === "number" ? isoTime(record.expires) : "never";
    const rate = typeof record?.rate === "string" ? record.rate : "default";
    const last = used.get(keyId);
    return [keyId, name.replace(/\t/g, "\\t").replace(/\n/g, "\\n"), scopes, expires, rate, last === undefined ? "never" : isoTime(last)].join("\t");
  });
}
