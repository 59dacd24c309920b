/**
 * prosody-migrator for this host: moves every keyval store of every host between `internal`
 * files, SQLite and PostgreSQL, with Prosody 0.12's config file, command line, messages and exit
 * codes (see /usr/bin/prosody-migrator), then verifies that input and output agree.
 *
 * Output as Prosody's: usage and config errors on stdout, log lines on stdout in its console
 * format (`general  info  Migrating host … store …`), "Migrating..." and "Done!" on stderr. Ours
 * besides: a progress bar on stderr when it is a terminal, per-user lines only with -v, a
 * verification line per store, and one `prosody-migrator: …` line on stderr for a failure.
 * Exit codes: 0 done and verified; 1 anything else.
 */
import { resolve } from "node:path";
import { loadConfigString } from "../core/config/index.js";
import { lineFormatter } from "../core/log-format.js";
import { isRoot, planPrivileges, switchUser } from "../cli/privileges.js";
import { parseMigratorArgs, usageText } from "./args.js";
import { openEndpoint, type Endpoint } from "./backends.js";
import { DEFAULT_MIGRATOR_CONFIG, loadMigratorConfig, MigratorConfigError, splitStoreName, storeConfig, type MigratorConfig } from "./config.js";
import { copyJob, prepareJob, type KeyvalJob } from "./copy.js";
import { createProgress } from "./progress.js";
import { verifyJob } from "./verify.js";

export interface MigratorIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** The command as run, for the usage text. */
  argv0: string;
  cwd: string;
  /** Started as root: switch to the prosody user first, as Prosody's migrator does (the executable only). */
  dropPrivileges: boolean;
  /** The config used without --config (default /etc/prosody/migrator.cfg.lua). */
  defaultConfig?: string;
}

type Level = "debug" | "info" | "warn" | "error";

const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, " ");

/** Runs the migrator; resolves with the exit code. */
export async function runMigrator(argv: readonly string[], io: MigratorIO): Promise<number> {
  const out = (t: string) => void io.stdout.write(t);
  const fail = (t: string) => {
    io.stderr.write(`prosody-migrator: ${t}\n`);
    return 1;
  };
  const args = parseMigratorArgs(argv);
  if ("error" in args) {
    out(`${args.error}\n`);
    return 1;
  }
  if (args.help) {
    out(usageText(io.argv0));
    return 0;
  }
  if (io.dropPrivileges && isRoot() && !args.root) {
    // Prosody's migrator reads no prosody.cfg.lua: its defaults (user and group "prosody", umask
    // 027) apply. Where it only warns and goes on as root, we refuse, as our prosodyctl does.
    const none = await loadConfigString("", "prosody-migrator");
    const plan = planPrivileges(none, { root: false });
    if ("error" in plan) return fail(`${plan.error.split("\n")[0]}; refusing to run as root (--root allows it)`);
    if (!plan.stay) {
      const failed = switchUser(plan, none);
      if (failed) return fail(`${failed}; refusing to run as root (--root allows it)`);
    }
  }

  const file = resolve(io.cwd, args.config ?? io.defaultConfig ?? DEFAULT_MIGRATOR_CONFIG);
  let config: MigratorConfig;
  try {
    config = await loadMigratorConfig(file);
  } catch (err) {
    if (!(err instanceof MigratorConfigError)) throw err;
    out(`There was an error loading the config file, check that the file exists\nand that the syntax is correct:\n\t${err.message}\n`);
    return 1;
  }
  const [from = "input", to = "output"] = args.positional;
  const problems: string[] = [];
  if (args.positional.length > 0 && args.positional.length !== 2) problems.push("Error: Incorrect number of parameters supplied.");
  if (!config.raw.has(from)) problems.push(`Error: Input store '${from}' not found in the config file.`);
  if (!config.raw.has(to)) problems.push(`Error: Output store '${to}' not found in the config file.`);
  if (problems.length) {
    out(`${problems.join("\n")}\n\n${usageText(io.argv0)}\nThe available stores in your migrator config are:\n\n`);
    for (const name of config.raw.keys()) out(`\t${name}\n`);
    out("\n");
    return 1;
  }
  const input = storeConfig(config, from);
  const output = storeConfig(config, to);
  if ("error" in input) return fail(input.error);
  if ("error" in output) return fail(output.error);

  const progress = createProgress(io.stderr);
  const format = lineFormatter({ timestamps: false, sourceWidth: 20 });
  const log = (level: Level, text: string) => {
    if (level === "debug" && !args.verbose) return;
    progress.print(io.stdout, format(new Date(), "general", level, text));
  };

  io.stderr.write("Migrating...\n");
  const opened: Endpoint[] = [];
  try {
    const open = async (which: "input" | "output", name: string, backend: typeof input.backend) => {
      try {
        const e = await openEndpoint(backend, which);
        opened.push(e);
        return e;
      } catch (err) {
        throw new Error(`cannot open ${which} store '${name}': ${message(err)}`, { cause: err });
      }
    };
    const source = await open("input", from, input.backend);
    const hosts = input.hosts
      ? new Map([...input.hosts].map(([host, list]) => [host, list.map(splitStoreName)]))
      : await source.discover();
    if (!input.hosts) log("info", `No hosts in the input store's config: migrating every host and store found in ${source.label}`);
    if (hosts.size === 0) log("warn", `Nothing to migrate: no ${input.hosts ? "hosts listed" : "data found"} in ${source.label}`);

    // Plan: keyval stores to copy; archive data (which our drivers cannot move) found and reported.
    const planned: { host: string; store: string }[] = [];
    const unsupported: string[] = [];
    for (const [host, entries] of hosts) {
      for (const { store, type } of entries) {
        const entry = type === "keyval" ? store : `${store}-${type}`;
        if (type !== "keyval" && type !== "archive" && type !== "pubsub") throw new Error(`Unknown store type: ${type} (host ${host}, store ${entry})`);
        if (type !== "archive") planned.push({ host, store });
        if (type === "keyval") continue;
        // pubsub: the node list is keyval (copied above); each node's items are an archive store.
        const prefix = type === "pubsub" ? (store === "pubsub_nodes" ? "pubsub_" : `${store}_`) : store;
        const found = await source.archives(host, prefix, type === "pubsub");
        if (found) unsupported.push(`host ${host} store ${entry}: ${found} not migrated (archive stores are not supported by this migrator)`);
        else log("info", `Host ${host} store ${entry}: no archive data to migrate`);
      }
    }
    if (unsupported.length && !args.keepGoing) {
      for (const u of unsupported) log("error", u);
      return fail(`${unsupported.length} store(s) hold archive data this migrator cannot move; nothing was migrated (--keep-going migrates the rest)`);
    }
    // Opened only now: a refused plan leaves no output behind (not even an empty database).
    const target = await open("output", to, output.backend);
    const jobs: KeyvalJob[] = [];
    for (const { host, store } of planned) jobs.push(await prepareJob(host, store, source.provider(host), target.provider(host)));

    progress.start(jobs.reduce((n, j) => n + j.users.length, 0));
    let written = 0;
    let unchanged = 0;
    let failed = 0;
    for (const job of jobs) {
      log("info", `Migrating host ${job.host} store ${job.store} (keyval)`);
      try {
        const r = await copyJob(job, {
          keepGoing: args.keepGoing,
          onRecord: (user, wrote) => {
            progress.tick(`${job.host} ${job.store}`);
            if (user !== null) log("debug", `${wrote ? "Migrated" : "Unchanged"}: user ${user}@${job.host} store ${job.store} (keyval)`);
          },
          onError: (user, err) =>
            log("error", user === null ? `Error migrating data for host: ${message(err)}` : `Error migrating data for user "${user}": ${message(err)}`),
        });
        written += r.written;
        unchanged += r.unchanged;
        failed += r.failed;
      } catch (err) {
        throw new Error(`host ${job.host} store ${job.store}: ${message(err)}`, { cause: err });
      }
    }
    progress.stop();
    log("info", `${written} record(s) written, ${unchanged} already up to date${failed ? `, ${failed} failed` : ""}`);

    let mismatches = 0;
    for (const job of jobs) {
      const v = await verifyJob(job);
      if (v.mismatch) {
        mismatches++;
        log("error", `Verification failed: ${v.mismatch}`);
      } else {
        log("info", `Verified host ${job.host} store ${job.store}: ${v.input.count} record(s), sha256 ${v.input.digest.slice(0, 16)} in input and output`);
      }
    }
    for (const u of unsupported) log("error", u);
    if (mismatches) return fail(`verification failed for ${mismatches} store(s): the output does not hold the same data as the input (see above)`);
    if (failed) return fail(`${failed} record(s) could not be migrated (see above)`);
    if (unsupported.length) return fail(`${unsupported.length} store(s) with archive data were not migrated (see above)`);
    io.stderr.write("Done!\n");
    return 0;
  } catch (err) {
    progress.stop();
    return fail(message(err));
  } finally {
    for (const e of opened.reverse()) await e.close().catch((err: unknown) => void io.stderr.write(`prosody-migrator: closing ${e.label}: ${message(err)}\n`));
  }
}
