/**
 * `prosodyctl shell SECTION NAME ARGS…`: Prosody 13's shell commands, as `prosodyctl shell` runs
 * them without a console (one command from the command line). Only the running server has them:
 * prosodyctl sends the command through the admin socket (src/cli/admin-socket.ts); without a
 * server it says it could not connect, as Prosody's shell does. Commands come from the
 * "shell-command" items of the modules the server loaded (ShellCommand in core/types.ts).
 * Output as Prosody 13: the command's lines, then "OK: message" (exit 0) or "Error: message" on
 * stderr (exit 1). `prosodyctl shell` alone, `shell help [SECTION]` or an unknown command list
 * the commands this server offers (Prosody's `shell` alone opens its console; we have none).
 */
import type { Runtime } from "../core/runtime.js";
import type { ShellCommand, ShellSession } from "../core/types.js";
import type { CliIO } from "./io.js";

/** Prosody's default width (132) less its "| " margin. */
const DEFAULT_WIDTH = 130;

type Registry = Map<string, Map<string | false, ShellCommand>>;

function isShellCommand(x: unknown): x is ShellCommand {
  const c = x as ShellCommand;
  return (
    typeof c === "object" && c !== null && typeof c.section === "string" && typeof c.name === "string" &&
    Array.isArray(c.args) && c.args.every((a) => typeof a?.name === "string") && typeof c.handler === "function"
  );
}

/** section:name → host → command (false: a global command, without host_selector). */
function registry(runtime: Runtime): Registry {
  const out: Registry = new Map();
  for (const host of ["*", ...runtime.hostNames()]) {
    for (const item of runtime.modules.hostItems(host, "shell-command")) {
      if (!isShellCommand(item)) continue;
      const key = `${item.section}:${item.name}`;
      let byHost = out.get(key);
      if (!byHost) out.set(key, (byHost = new Map()));
      byHost.set(item.host_selector && host !== "*" ? host : false, item);
    }
  }
  return out;
}

/** Runs one shell command in the server; resolves to the exit code. */
export async function runShell(args: string[], io: CliIO, runtime: Runtime): Promise<number> {
  const commands = registry(runtime);
  const out = (line: string) => io.stdout(`${line}\n`);
  const [section, name] = args;
  if (section === undefined || section === "help") {
    listCommands(commands, out, name);
    return 0;
  }
  const byHost = commands.get(`${section}:${name}`);
  const any = byHost && [...byHost.values()][0];
  if (!byHost || !any) {
    io.stderr("Error: Command not found. Is the necessary module loaded?\n");
    listCommands(commands, out);
    return 1;
  }
  const error = (message: string) => {
    io.stderr(`Error: ${message}\n`);
    return 1;
  };
  const parsed = parseFlags(args.slice(2), any.flags);
  if ("error" in parsed) return error(parsed.error);
  const positional = any.args.map((_, i) => parsed.positional[i]);
  let cmd = byHost.get(false);
  if (any.host_selector) {
    const index = any.args.findIndex((a) => a.name === any.host_selector);
    const host = domainOf(positional[index]);
    if (host === undefined) return error(`Invalid or missing argument '${any.host_selector}'`);
    if (!runtime.hostNames().includes(host)) return error(`Unknown host: ${host}`);
    cmd = byHost.get(host);
    if (!cmd) return error(`This command is not available on ${host}`);
  }
  if (!cmd) return error("Command not found. Is the necessary module loaded?");
  const session: ShellSession = {
    print: (...values) => out(values.map((v) => (v === undefined || v === null ? "nil" : String(v))).join("\t")),
    width: (io.width ?? DEFAULT_WIDTH + 2) - 2,
  };
  let ok: boolean | undefined;
  let message: string | undefined;
  try {
    [ok, message] = await cmd.handler(session, positional, parsed.opts);
  } catch (err) {
    return error(err instanceof Error ? err.message : String(err));
  }
  if (message === undefined) {
    out(`Result: ${String(ok)}`);
    return 0;
  }
  if (!ok) return error(message);
  out(`OK: ${message}`);
  return 0;
}

/** The domain of a JID (`user@host/resource`) or a host name. */
function domainOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const at = value.indexOf("@");
  const host = value.slice(at + 1).split("/")[0]!;
  return host === "" ? undefined : host;
}

/**
 * Prosody's util.argparse as its shell uses it: flags anywhere among the arguments, `--a-b` named
 * `a_b`, `--name=value`, `--no-name` (false), `--` ends the flags; unknown flags are accepted.
 */
export function parseFlags(words: string[], flags: ShellCommand["flags"] = {}): { opts: Record<string, unknown>; positional: string[] } | { error: string } {
  const opts: Record<string, unknown> = {};
  const positional: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === "--") {
      positional.push(...words.slice(i + 1));
      break;
    }
    const prefix = /^--?/.exec(word)?.[0];
    if (!prefix) {
      positional.push(word);
      continue;
    }
    const param = word.slice(prefix.length);
    if (param.length <= 1) return { error: `Unknown parameter: ${word}` };
    const uparam = param.replace(/=.*$/s, "").replace(/-/g, "_");
    let key: string;
    let value: unknown;
    if (flags.value_params?.[uparam] || flags.array_params?.[uparam]) {
      key = uparam;
      const eq = param.slice(uparam.length);
      value = eq.startsWith("=") ? eq.slice(1) : words[++i];
      if (value === undefined) return { error: `Expected value after ${word}` };
    } else {
      const kv = /^([^=]+)=(.+)$/s.exec(param);
      [key, value] = kv ? [kv[1]!, kv[2]!] : param.startsWith("no-") ? [param.slice(3), false] : [param, true];
      key = key.replace(/-/g, "_");
    }
    if (flags.array_params?.[uparam]) {
      const list = Array.isArray(opts[key]) ? (opts[key] as unknown[]) : (opts[key] = []);
      (list as unknown[]).push(value);
    } else opts[key] = value;
  }
  return { opts, positional };
}

/** Prosody's `help SECTION` layout (the command-line form), for every section or one. */
function listCommands(commands: Registry, out: (line: string) => void, only?: string): void {
  const sections = new Map<string, ShellCommand[]>();
  for (const byHost of commands.values()) {
    const cmd = [...byHost.values()][0]!;
    if (only !== undefined && cmd.section !== only) continue;
    const list = sections.get(cmd.section) ?? [];
    list.push(cmd);
    sections.set(cmd.section, list);
  }
  if (sections.size === 0) {
    out(only === undefined ? "This server offers no shell commands (no module it loaded adds any)." : `Unknown topic: ${only}`);
    return;
  }
  if (only === undefined) out("Shell commands this server offers (prosodyctl shell SECTION COMMAND ARGS...):\n");
  for (const [section, list] of [...sections].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const desc = list.find((c) => c.section_desc)?.section_desc;
    out(`Help: ${section}`);
    if (desc) out(desc);
    out("-".repeat((desc ?? section).length));
    out("");
    for (const cmd of list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const args = cmd.args.map((a) => `<${a.name}>`).join(" ");
      out(`${section} ${cmd.name} ${args}`);
      out(`    ${cmd.desc}`);
      const { kv_params = {}, value_params = {}, array_params = {} } = cmd.flags ?? {};
      if (cmd.flags) {
        out("");
        out("    Flags:");
        for (const n of Object.keys(kv_params).sort()) out(`      --${n.replace(/_/g, "-")}`);
        for (const n of Object.keys(value_params).sort()) out(`      --${n.replace(/_/g, "-")} <${n}>`);
        for (const n of Object.keys(array_params).sort()) if (array_params[n]) out(`      --${n.replace(/_/g, "-")} <${n}>, ...`);
      }
      out("");
    }
  }
}
