/**
 * `prosodyctl [--config FILE] storage recover-journal [--discard-journal | --apply-anyway] [HOST | FILE]`:
 * recovery of SQLite databases that our processes refuse (a damaged journal, a database file changed
 * by another program or missing; see storage/sqlite/integrity.ts and recover.ts). Runs with no
 * server; refuses while another of our processes has the database open.
 * Without HOST or FILE: every SQLite database the config's enabled hosts use.
 */
import fs from "node:fs";
import path from "node:path";
import type { Config } from "../core/config/index.js";
import type { TrustPolicy } from "../core/trusted-paths.js";
import { createRuntime } from "../create-runtime.js";
import { sqlDatabasesOf } from "../core/sql-startup.js";
import { PROSODY_SQLITE_DDL } from "../storage/drivers/sql.js";
import { recoverDatabase } from "../storage/sqlite/recover.js";
import type { CliIO } from "./io.js";

const USAGE = `storage recover-journal [--discard-journal | --apply-anyway] [HOST | FILE]`;

const HELP = `Usage: prosodyctl [--config FILE] ${USAGE}

Salvages an SQLite database that our processes refuse to open (a damaged journal record, a
database file changed by another program, a missing database file): every intact journal record
is applied to the database file, what was skipped is listed, the originals are kept beside it as
<name>.before-recovery-<time>, and the journal is removed. Stop the server first.

  HOST               the database used by this host (default: every SQLite database of the config)
  FILE               a database file (e.g. /var/lib/prosody/prosody.sqlite)
  --discard-journal  keep the database file as it is and move the journal aside
  --apply-anyway     replay the journal even on a database file changed by another program
                     (or into an empty database when the file is missing)
`;

export async function runStorageCommand(
  args: string[],
  io: CliIO,
  loadConfig: () => Promise<{ config: Config; trust?: TrustPolicy } | number>,
): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    io.stdout(HELP);
    return sub === undefined ? 1 : 0;
  }
  if (sub !== "recover-journal") {
    io.stdout(`Unknown storage command '${sub}'. Usage: prosodyctl ${USAGE}\n`);
    return 1;
  }
  const opts = { discardJournal: false, applyAnyway: false };
  const targets: string[] = [];
  for (const a of rest) {
    if (a === "--discard-journal") opts.discardJournal = true;
    else if (a === "--apply-anyway") opts.applyAnyway = true;
    else if (a === "--help" || a === "-h") {
      io.stdout(HELP);
      return 0;
    } else if (a.startsWith("-")) {
      io.stdout(`Unknown option ${a}. Usage: prosodyctl ${USAGE}\n`);
      return 1;
    } else targets.push(a);
  }
  if (targets.length > 1) {
    io.stdout(`Give at most one HOST or FILE. Usage: prosodyctl ${USAGE}\n`);
    return 1;
  }
  if (opts.discardJournal && opts.applyAnyway) {
    io.stdout("--discard-journal and --apply-anyway exclude each other\n");
    return 1;
  }

  const loaded = await loadConfig();
  if (typeof loaded === "number") return loaded;
  const { config } = loaded;
  const runtime = createRuntime({ config, processType: "prosodyctl", cwd: io.cwd, trust: loaded.trust });
  const target = targets[0];
  let files: string[];
  if (target === undefined) {
    files = [...sqlDatabasesOf(runtime, config.hosts().filter((h) => config.isEnabled(h))).keys()];
    if (!files.length) {
      io.stdout("No host in this config uses SQLite (storage = \"sql\"); name the database FILE to recover.\n");
      return 1;
    }
  } else if (config.sections.has(target)) {
    files = [...sqlDatabasesOf(runtime, [target]).keys()];
    if (!files.length) {
      io.stdout(`Host ${target} does not use SQLite storage.\n`);
      return 1;
    }
  } else if (target.includes("/") || fs.existsSync(path.resolve(io.cwd, target))) {
    const file = path.resolve(io.cwd, target);
    if (file.endsWith(".sqljs-journal")) {
      io.stdout(`Name the database file, not its journal: ${file.slice(0, -".sqljs-journal".length)}\n`);
      return 1;
    }
    files = [file];
  } else {
    io.stdout(`'${target}' is neither a host of this config nor an existing file.\n`);
    return 1;
  }

  let code = 0;
  for (const file of files) {
    const r = await recoverDatabase(file, { ...opts, schema: PROSODY_SQLITE_DDL });
    io.stdout(r.lines.join("\n") + "\n");
    code = Math.max(code, r.code);
  }
  return code;
}
