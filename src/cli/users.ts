/**
 * `prosodyctl adduser|passwd|deluser JID` with Prosody 0.12's prompts, messages and exit codes
 * (spec §4.4). Everything is printed on stdout, as Prosody does.
 *
 * The password is read twice ("Enter new password: ", "Retype new password: "): from a terminal
 * without echo (raw mode), otherwise one line each from stdin. The account is written through the
 * host's auth module (`authentication`, default internal_hashed), loaded in this process.
 *
 * Differences from Prosody: an empty password is refused ("No password - cancelled") where
 * Prosody creates an account with an empty password; with a non-terminal stdin no ANSI
 * "hidden text" codes are written around the prompts, and the answer to "try again?" is the next
 * stdin line (EOF means no); an unloadable auth module is reported instead of falling back to
 * Prosody's null provider; a password over 1023 bytes and a username too long for the storage get
 * their own messages (Prosody: "Error: Password fails SASLprep", "Error: Error saving to storage").
 */
import type { Config } from "../core/config/index.js";
import { createLogger } from "../core/logger.js";
import type { Runtime } from "../core/runtime.js";
import { createRuntime } from "../create-runtime.js";
import type { TrustPolicy } from "../core/trusted-paths.js";
import { openSqlStorage } from "./sql-storage.js";
import type { SharedStorage } from "./module-command.js";
import { INTERRUPTED, type PasswordInput } from "./io.js";
import { openPasswordInput } from "./password-input.js";
import { PREP_MAX_BYTES, nameprep, nodeprep } from "../util/stringprep.js";

export type UserCommand = "adduser" | "passwd" | "deluser";

export interface UserCommandIO {
  stdout: (text: string) => void;
  cwd: string;
  argv0: string;
  /** Where passwords come from (default process.stdin). */
  input?: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  /** Where passwords come from instead of `input` (see CliIO). */
  passwordInput?: PasswordInput;
}

export interface UserCommandContext {
  io: UserCommandIO;
  /**
   * Loads the config (a number is an exit code after the error was printed); `trust` is set
   * when the process started as root (see src/cli/trust.ts).
   */
  loadConfig: () => Promise<{ config: Config; trust?: TrustPolicy } | number>;
  /** In the running server: its storage, when the command may use it (module-command.ts). */
  shared?: SharedStorage;
}

/** What mod_auth_* exports (see plugins/mod_auth_internal_hashed). */
interface AuthApi {
  userExists(username: string): Promise<boolean>;
  createUser(username: string, password: string, options?: { ifAbsent?: boolean }): Promise<[true, undefined] | [undefined, string]>;
  deleteUser(username: string): Promise<[true, undefined] | [undefined, string]>;
}

const COMMANDS: Record<UserCommand, { description: string; understand: string }> = {
  adduser: {
    description: "Create the specified user account in Prosody",
    understand: "the JID you want to create",
  },
  passwd: {
    description: "Set the password for the specified user account in Prosody",
    understand: "the JID you want to set the password for",
  },
  deluser: {
    description: "Permanently remove the specified user account from Prosody",
    understand: "the JID to the user account you want to delete",
  },
};

/** Prosody's prosodyctl message table; unknown codes print "Error: <Code with spaces>". */
const ERROR_MESSAGES: Record<string, string> = {
  "invalid-username": "The given username is invalid in a Jabber ID",
  // Ours: Prosody prints "Error: Error saving to storage" (its internal storage fails the same way).
  "username-too-long": "The given username is too long to be stored (internal storage: at most 250 bytes once encoded)",
  "invalid-hostname": "The given hostname is invalid",
  "no-password": "No password was supplied",
  "no-such-user": "The given user does not exist on the server",
  "no-such-host": "The given hostname does not exist in the config",
  "unable-to-save-data": "Unable to store, perhaps you don't have permission?",
};

export function errorMessage(code: string): string {
  return ERROR_MESSAGES[code] ?? `Error: ${code.replace(/-/g, " ").replace(/^./, (c) => c.toUpperCase())}`;
}

export function isUserCommand(command: string): command is UserCommand {
  return Object.hasOwn(COMMANDS, command);
}

export async function runUserCommand(command: UserCommand, args: string[], ctx: UserCommandContext): Promise<number> {
  const { io } = ctx;
  const say = (line: string) => io.stdout(`${line}\n`);
  const spec = COMMANDS[command];

  const loaded = await ctx.loadConfig();
  if (typeof loaded === "number") return loaded;
  const { config, trust } = loaded;

  // Leading options only (Prosody's argparse stops at the first non-option).
  let help = false;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    if (a === "-h" || a === "-?" || a === "--help") help = true;
  }
  const jidArg = args[i];
  if (help || jidArg === undefined) {
    say(`Usage: ${io.argv0} ${command} JID`);
    say(` ${spec.description}`);
    return help ? 0 : 1;
  }

  const { node, host } = preppedSplit(jidArg);
  if (node === undefined && host !== undefined) {
    say(`Failed to understand JID, please supply ${spec.understand}`);
    say(`Usage: ${io.argv0} ${command} user@host`);
    return 1;
  }
  if (node === undefined || host === undefined) {
    say("Please specify a JID, including a host. e.g. alice@example.com");
    return 1;
  }

  const log = createLogger("prosodyctl");
  for (const w of config.warnings) log("warn", "Configuration warning: %s", w);
  // The running server's storage serves hosts of its config (one prosodyctl would add is not there).
  const storage = config.sections.has(host) ? ctx.shared?.(config) : undefined;
  if (!config.sections.has(host)) {
    say(`The host '${host}' is not listed in the configuration file (or is not enabled).`);
    if (command !== "deluser") say("The user will not be able to log in until this is changed.");
    // As Prosody's prosodyctl does, act as if the host existed (global options apply).
    config.sections.set(host, { name: host, kind: "VirtualHost", options: {}, file: config.file ?? "(prosodyctl)" });
  }

  const runtime = createRuntime({ config, processType: "prosodyctl", cwd: io.cwd, trust, storage });
  let input: PasswordInput | undefined;
  try {
    const refused = storage ? undefined : await openSqlStorage(runtime, config);
    if (refused) {
      say(refused);
      return 1;
    }
    const authName = config.get(host, "authentication");
    const authModule = `auth_${typeof authName === "string" ? authName : "internal_hashed"}`;
    let auth: AuthApi;
    try {
      auth = (await runtime.modules.load(host, authModule)).exports as AuthApi;
      if (typeof auth.userExists !== "function") throw new Error("it provides no account functions");
    } catch (err) {
      say(`Error: could not load mod_${authModule} on ${host}: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }

    const exists = await auth.userExists(node);
    if (command === "deluser") {
      if (!exists) {
        say("That user does not exist on this server");
        return 1;
      }
      const [ok, err] = await auth.deleteUser(node);
      if (!ok) {
        say(errorMessage(err));
        return 1;
      }
      await purge(runtime, config, node, host);
      return 0;
    }

    if (command === "adduser" && exists) {
      say("That user already exists");
      return 1;
    }
    if (command === "passwd" && !exists) {
      say("That user does not exist, use prosodyctl adduser to create a new user");
      return 1;
    }

    input = io.passwordInput ?? openPasswordInput(io.input ?? process.stdin);
    const password = await readPassword(input, io.stdout);
    input.close();
    if (password === INTERRUPTED) return 130;
    if (password === undefined) return 1;
    // As Prosody's prosodyctl.adduser (passwd goes through it too): the name is nodeprepped again,
    // strictly, so a name with code points unassigned in Unicode 3.2 (e.g. "ẞ") is refused here.
    if (nodeprep(node, true) === undefined) {
      say(errorMessage("invalid-username"));
      return 1;
    }
    // Prosody refuses it too, as "Error: Password fails SASLprep".
    if (Buffer.byteLength(password, "utf8") > PREP_MAX_BYTES) {
      say(`The password is too long (at most ${PREP_MAX_BYTES} bytes)`);
      return 1;
    }

    // adduser and passwd both (re)write the whole record, as Prosody's prosodyctl does; adduser
    // only if the name is still free (a registration may have taken it while we asked).
    const [ok, err] = await auth.createUser(node, password, { ifAbsent: command === "adduser" });
    if (ok) {
      // Prosody's wording for a new account (mod_register_ibr); shown with -v or in a caller's log.
      if (command === "adduser") log("info", "User account created: %s@%s (prosodyctl adduser)", node, host);
      return 0;
    }
    if (err === "user-exists") {
      say("That user already exists");
      return 1;
    }
    say(errorMessage(err));
    return 1;
  } finally {
    input?.close();
    // Flush every store written to before the process exits (the server's own stay open).
    await runtime.stop().catch((err) => log("error", "Error while closing: %s", err instanceof Error ? err.message : err));
  }
}

// --- JIDs ---

/**
 * Prosody's jid.prepped_split for the node and host (a resource is accepted and ignored): any
 * part that fails its profile makes the whole JID invalid (both undefined).
 */
export function preppedSplit(jid: string): { node?: string; host?: string } {
  const m = /^(?:([^@/]+)@)?([^@/]+)(?:\/(.+))?$/s.exec(jid);
  if (!m) return {};
  let host = m[2]!;
  if (host === ".") return {};
  if (host.endsWith(".")) host = host.slice(0, -1);
  const preppedHost = nameprep(host);
  if (!preppedHost) return {};
  if (m[1] === undefined) return { host: preppedHost };
  const node = nodeprep(m[1]);
  if (!node) return {};
  return { node, host: preppedHost };
}

// --- Passwords ---


async function readPassword(input: PasswordInput, write: (text: string) => void): Promise<string | undefined | typeof INTERRUPTED> {
  for (;;) {
    write("Enter new password: ");
    const password = await input.readSecret();
    write("\n");
    if (password === INTERRUPTED) return password;
    if (password === undefined || password === "") {
      write("No password - cancelled\n");
      return undefined;
    }
    write("Retype new password: ");
    const again = await input.readSecret();
    write("\n");
    if (again === INTERRUPTED) return again;
    if (again === password) return password;
    write("Passwords did not match, try again? [Y/n] ");
    const choice = await input.readChoice();
    write("\n");
    if (choice === INTERRUPTED) return choice;
    // As in Prosody, only an explicit "y" tries again (Enter alone means no).
    if (choice?.toLowerCase() !== "y") return undefined;
  }
}

export { openPasswordInput };

// --- Deleting ---

/** Removes every record of the user on the host, in every storage driver the host uses. */
async function purge(runtime: Runtime, config: Config, user: string, host: string): Promise<void> {
  const drivers = new Set<string>([runtime.storage.driverName(host, "accounts"), runtime.storage.driverName(host, "\0default")]);
  const storage = config.get(host, "storage");
  if (storage && typeof storage === "object" && !Array.isArray(storage)) {
    for (const store of Object.keys(storage)) drivers.add(runtime.storage.driverName(host, store));
  }
  for (const driver of drivers) await runtime.storage.provider(host, driver);
  await runtime.storage.purge(user, host);
}
