/**
 * `prosodyctl check [what]`: Prosody 0.12's checks that apply to this host, with its output shape
 * ("Checking …", indented findings, "Done.", then "All checks passed, congratulations!" / exit 0
 * or "Problems found, see above." / exit 2) and its messages where the check is the same.
 *
 *   config     the config file (src/cli/check-config.ts), as Prosody's `check config`
 *   disabled   the hosts with `enabled = false`
 *   modules    ours: which enabled modules this host serves, which it leaves to Prosody (XMPP),
 *              which neither has (a typo?), and whether the `authentication` module exists here
 *   paths      ours: data directory, plugin_paths, pidfile and log file directories, as the
 *              user the server runs as
 *   certs      certificates, as Prosody's (check-certs.ts)
 *   dns, turn, connectivity   Prosody's XMPP checks: said so plainly, nothing to check here
 *
 * Without `what`: disabled, config, modules, paths, certs.
 */
import fs from "node:fs";
import path from "node:path";
import { modulesForHost, type Config } from "../core/config/index.js";
import { findPlugin } from "../core/plugin-loader.js";
import { prosodyHasModule, prosodyModuleDirs } from "../core/prosody-modules.js";
import type { TrustPolicy } from "../core/trusted-paths.js";
import type { OptionValue } from "../core/types.js";
import { createRuntime } from "../create-runtime.js";
import { checkCertificates } from "./check-certs.js";
import { checkConfigFile, type Finding } from "./check-config.js";
import type { CliIO } from "./io.js";

const KNOWN = ["config", "modules", "paths", "certs", "disabled", "dns", "turn", "connectivity"];
/** Where Debian's (and a source build's) Prosody keeps its own modules. */

export async function runCheckCommand(
  args: string[],
  io: CliIO,
  loadConfig: () => Promise<{ config: Config; trust?: TrustPolicy } | number>,
): Promise<number> {
  const say = (line = "") => io.stdout(`${line}\n`);
  const what = args[0];
  if (what === "help" || what === "--help" || what === "-h") {
    say(`Usage: ${io.argv0} check [config|modules|paths|certs|disabled]`);
    say(" Perform basic checks on your Prosody installation");
    return 1;
  }
  if (what !== undefined && !KNOWN.includes(what)) {
    say(`Don't know how to check '${what}'. Try one of 'config', 'modules', 'paths', 'certs' or 'disabled'.`);
    say("Note: 'dns', 'turn' and 'connectivity' are checks of Prosody's XMPP service; run Prosody's own prosodyctl for them.");
    return 1;
  }
  if (what === "dns" || what === "turn" || what === "connectivity") {
    say(`Nothing to check: '${what}' concerns Prosody's XMPP service, which this host does not provide.`);
    say(`Run Prosody's own prosodyctl for it: /usr/bin/prosodyctl check ${what}`);
    return 0;
  }

  const loaded = await loadConfig();
  if (typeof loaded === "number") return loaded;
  const { config } = loaded;
  let ok = true;
  const report = (title: string, findings: Finding[], head: string[] = []) => {
    say(title);
    for (const line of head) say(line);
    for (const f of findings) {
      for (const line of f.lines) say(line);
      if (f.problem) ok = false;
    }
    say("Done.");
    say();
  };

  if (what === undefined || what === "disabled") {
    const disabled = config.hosts().filter((h) => !config.isEnabled(h));
    if (disabled.length) {
      say(`${what ? "These hosts are disabled" : "Checks will be skipped for these disabled hosts"}: ${disabled.join(", ")}`);
      if (what) return 0;
      say();
    }
  }
  if (what === undefined || what === "config") {
    const head = what === "config" ? ["    The following configuration files have been loaded:", ...(config.files.length ? config.files : ["(the embedded default)"]).map((f) => `      -  ${f}`)] : [];
    report("Checking config...", checkConfigFile(config), head);
  }
  if (what === undefined || what === "modules") report("Checking modules...", checkModules(config, io.cwd, loaded.trust));
  if (what === undefined || what === "paths") report("Checking paths...", checkPaths(config, io.cwd, loaded.trust));
  if (what === undefined || what === "certs") {
    // Prints its own section, from "Checking certificates..." to the blank line after it.
    if ((await checkCertificates(config, { out: (line) => say(line) })) > 0) ok = false;
  }

  say(ok ? "All checks passed, congratulations!" : "Problems found, see above.");
  return ok ? 0 : 2;
}

// --- modules ---

/** Whether Prosody itself (or a plugin folder of the config) has `mod_<name>`. */
function checkModules(config: Config, cwd: string, trust: TrustPolicy | undefined): Finding[] {
  const rt = createRuntime({ config, processType: "prosodyctl", cwd, trust });
  const pluginPaths = rt.pluginPaths();
  const luaDirs = prosodyModuleDirs(config, pluginPaths);
  const found = (name: string) => {
    try {
      findPlugin(name, pluginPaths, rt.paths.plugins, rt.builtins);
      return true;
    } catch {
      return false;
    }
  };
  const out: Finding[] = [];
  const prosodyOnly = new Set<string>();
  let servedAnywhere = false;
  for (const host of config.hosts().filter((h) => config.isEnabled(h))) {
    const { modules, autoloaded } = modulesForHost(config, host);
    const served: string[] = [];
    const unknown: Finding[] = [];
    for (const name of modules) {
      // mod_x / auth_x / storage_x in modules_enabled: `check config` explains those.
      if (autoloaded.has(name) || /^mod_/.test(name)) continue;
      if (found(name)) served.push(name);
      else if (prosodyHasModule(name, luaDirs)) prosodyOnly.add(name);
      else {
        unknown.push({
          lines: ["", `    Unknown module '${name}' on ${host}: neither this host nor Prosody has mod_${name}`, `    (searched ${[rt.paths.plugins, ...luaDirs].join(", ")}). A typo?`],
          problem: true,
        });
      }
    }
    if (served.some((m) => !Object.hasOwn(rt.builtins, m))) servedAnywhere = true;
    out.push({ lines: [`    ${host}: ${served.length ? `serves ${served.join(", ")}` : "serves none of its modules"}`], problem: false }, ...unknown);

    const needsAuth = served.includes("invites_register_web") || served.includes("invites_register");
    const auth = config.get(host, "authentication");
    const authName = typeof auth === "string" ? auth : "internal_hashed";
    if (needsAuth && !found(`auth_${authName}`)) {
      out.push({
        lines: ["", `    authentication = "${authName}" on ${host}: this host has no mod_auth_${authName},`, "    so web registration cannot create accounts there (bundled: internal_hashed, internal_plain)."],
        problem: true,
      });
    }
  }
  if (prosodyOnly.size) {
    out.push({ lines: [`    Left to Prosody (XMPP modules this host does not serve): ${[...prosodyOnly].join(", ")}`], problem: false });
  }
  if (!servedAnywhere && config.hosts().some((h) => config.isEnabled(h))) {
    out.push({
      lines: ["", "    No enabled host has a module this host serves: enable invites, invites_api, invites_page,", "    invites_register_web (and http) in modules_enabled."],
      problem: true,
    });
  }
  return out;
}

// --- paths ---

/** Why `dir` cannot hold files written by this process, or undefined. */
function unwritableDir(dir: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : `cannot be read (${(err as NodeJS.ErrnoException).code})`;
  }
  if (!st.isDirectory()) return "is not a directory";
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch {
    return `is not writable by ${whoAmI()}`;
  }
  return undefined;
}

function whoAmI(): string {
  const uid = process.getuid?.();
  try {
    const name = fs.readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.split(":")[2] === String(uid))?.split(":")[0];
    return name ? `user ${name}` : `uid ${uid}`;
  } catch {
    return `uid ${uid}`;
  }
}

/**
 * File names in a `log` option: a file name, `level = file` pairs, or sink tables (a file sink
 * is `to = "file"` or no `to`, with `filename`); "*console", "*syslog"… and other sinks aside.
 */
function logFiles(value: OptionValue | undefined): string[] {
  const out: string[] = [];
  const visit = (v: unknown, depth: number) => {
    if (typeof v === "string") {
      if (!v.startsWith("*")) out.push(v);
    } else if (v && typeof v === "object" && depth < 2) {
      const rec = v as Record<string, unknown>;
      if ("to" in rec || "filename" in rec || "levels" in rec) {
        if ((rec.to === undefined || rec.to === "file") && typeof rec.filename === "string") out.push(rec.filename);
      } else {
        for (const x of Object.values(rec)) visit(x, depth + 1);
      }
    }
  };
  visit(value, 0);
  return out;
}

function checkPaths(config: Config, cwd: string, trust: TrustPolicy | undefined): Finding[] {
  const rt = createRuntime({ config, processType: "prosodyctl", cwd, trust });
  const out: Finding[] = [];
  const bad = (...lines: string[]) => out.push({ lines: ["", ...lines], problem: true });

  const data = rt.paths.data;
  const dataWhy = unwritableDir(data);
  // Our storage creates a missing data directory on the first write, if it can.
  const dataCreatable = dataWhy === "does not exist" && !unwritableDir(path.dirname(data));
  // A file beside the data (a relative pidfile) is fine once the data directory is created.
  const dirWhy = (dir: string) => (dataCreatable && dir === data ? undefined : unwritableDir(dir));
  if (dataCreatable) {
    out.push({ lines: [`    The data directory ${data} (data_path) does not exist yet; it is created on the first write.`], problem: false });
  } else if (dataWhy) {
    bad(`    The data directory ${data} (data_path) ${dataWhy}.`, "    Accounts, invites and keys are stored there: create it, owned by the user the server runs as.");
  }
  for (const dir of rt.pluginPaths()) {
    // Prosody does not mind either (Debian's stock config names /usr/local/lib/prosody/modules).
    if (!fs.existsSync(dir)) out.push({ lines: [`    The plugin directory ${dir} (plugin_paths) does not exist: nothing is loaded from it.`], problem: false });
  }
  const pidfile = config.get("*", "pidfile");
  if (typeof pidfile === "string") {
    // Relative to the data directory, as Prosody's get_option_path(…, "data").
    const dir = path.dirname(path.resolve(data, pidfile));
    const why = dirWhy(dir);
    if (why) bad(`    The directory of pidfile ${pidfile}, ${dir}, ${why}.`);
  }
  for (const file of logFiles(config.get("*", "log"))) {
    // Prosody opens a log file by the name as given: relative to the working directory.
    const dir = path.dirname(path.resolve(cwd, file));
    const why = dirWhy(dir);
    if (why) bad(`    The directory of the log file ${file}, ${dir}, ${why}.`);
  }
  if (!out.some((f) => f.problem)) out.unshift({ lines: [`    Data: ${data}`], problem: false });
  return out;
}
