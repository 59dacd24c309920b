/**
 * Recovery of a database that every process refuses (integrity.ts): `prosodyctl storage
 * recover-journal` (src/cli/storage.ts) calls recoverDatabase() for each database file.
 *
 * What it does, with no other process of ours having the database open (checked with the
 * presence markers, then held off with the writer lock for the whole run):
 * - reads the journal's records area and salvages EVERY intact record, before and after any
 *   damage, in file order (journal.ts scanRecords: after damage it resynchronises on the next
 *   position where a length, a CRC32 and a statement list line up);
 * - applies the ones the database file does not hold yet (the same generation rules as a normal
 *   load: all of them for a journal of the DB's generation, those after the base offset for the
 *   one a background compaction was moving away from, none for a stale journal) on top of the DB
 *   file, each record in a savepoint. A record that fails to apply is reported and skipped.
 *   Why skipping keeps the rest consistent: a record holds absolute row writes (DELETE + INSERT of
 *   whole rows; transactions record the values they computed, not the reads), so later records
 *   never depend on a skipped one to apply; the result is the state as if the skipped commits had
 *   never happened (their keys keep their older values unless a later record wrote them). That can
 *   undo what they did (e.g. an invite consumed in a damaged record is valid again), which is why
 *   each skipped record's offset and size are printed and the originals are kept for inspection;
 * - keeps the originals under `<name>.before-recovery-<UTC time>` (hard links, or copies where a
 *   link is not possible), never deleting them; writes the result as a new image (its own checksum,
 *   next generation) over the DB file; removes the journal. The DB file is then complete alone.
 *
 * Needs an explicit choice (and otherwise refuses, changing nothing): a DB file changed by another
 * program, a missing DB file, a journal with an unreadable header or newer than the DB:
 * `discardJournal` keeps the DB file as it is and moves the journal aside; `applyAnyway` replays
 * the intact records on top of the DB file (an empty database with `schema` when it is missing).
 */
import fs from "node:fs";
import path from "node:path";
import { atomicWriteSync } from "./atomic-file.js";
import { BASE_OFFSET_AT, GEN_AT, SQLITE_MAGIC, isOwnImage, nextGen, stampImage } from "./db-image.js";
import { fsyncDir, lookOf } from "./fsutil.js";
import { JOURNAL_SUFFIX } from "./durable-db.js";
import { HEADER_SIZE, decodeHeader, scanRecords, type SqlStatement } from "./journal.js";
import { ProcessLock } from "./lock.js";
import { Presence } from "./presence.js";
import { loadSqlJs } from "./sqljs.js";

export interface RecoverOptions {
  discardJournal?: boolean;
  applyAnyway?: boolean;
  /** Statements creating the schema of an empty database (when the DB file is missing). */
  schema?: readonly string[];
  /** For the names of the kept originals (tests). */
  now?: Date;
  lockTimeoutMs?: number;
}

export interface RecoverResult {
  /** 0 recovered (or nothing to do), 1 refused / failed. */
  code: number;
  lines: string[];
}

const errMsg = (err: unknown) => (err instanceof Error ? err.message : String(err));

function readIfExists(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Keeps `file` under `aside` (a hard link: the exact bytes, instantly; a copy where links fail). */
function keepAside(file: string, aside: string): void {
  try {
    fs.linkSync(file, aside);
  } catch {
    fs.copyFileSync(file, aside, fs.constants.COPYFILE_EXCL);
    const fd = fs.openSync(aside, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

export async function recoverDatabase(dbFile: string, opts: RecoverOptions = {}): Promise<RecoverResult> {
  const file = path.resolve(dbFile);
  const journal = file + JOURNAL_SUFFIX;
  const lines: string[] = [`${file}:`];
  const fail = (why: string): RecoverResult => ({ code: 1, lines: [...lines, `  refused: ${why} (nothing was changed)`] });
  if (opts.discardJournal && opts.applyAnyway) return fail("--discard-journal and --apply-anyway exclude each other");
  let realFile: string;
  try {
    realFile = path.join(fs.realpathSync(path.dirname(file)), path.basename(file));
  } catch (err) {
    return fail(`cannot reach its directory: ${errMsg(err)}`);
  }

  const presence = await Presence.announce(file);
  if (!presence) return fail("cannot announce this process to the others (lock directory unusable)");
  // The same lock as every DurableSqlite on this file (durable-db.ts), so recovery excludes every writer.
  const lock = new ProcessLock(path.dirname(realFile), path.basename(realFile), file, opts.lockTimeoutMs ?? 5000);
  try {
    if (await presence.othersOpen()) return fail("another of our processes (the server or a prosodyctl command) has it open; stop it first");
    try {
      await lock.acquire();
    } catch (err) {
      return fail(errMsg(err));
    }
    // Someone may have opened it between the check and the lock: they would reload under our feet.
    if (await presence.othersOpen()) return fail("another of our processes has opened it meanwhile; stop it first");
    return await recoverLocked(file, journal, lines, fail, opts);
  } catch (err) {
    return fail(errMsg(err));
  } finally {
    lock.release();
    presence.close();
  }
}

async function recoverLocked(
  file: string,
  journal: string,
  lines: string[],
  fail: (why: string) => RecoverResult,
  opts: RecoverOptions,
): Promise<RecoverResult> {
  const wal = fs.statSync(file + "-wal", { throwIfNoEntry: false });
  if (wal && wal.size > 0) return fail(`${file}-wal is not empty; checkpoint it with sqlite3 first`);
  const db = readIfExists(file);
  const jbuf = readIfExists(journal);
  if (!jbuf) {
    lines.push("  no journal: nothing to recover; the database file is complete");
    return { code: 0, lines };
  }
  if (db && (db.length < 100 || !db.subarray(0, 16).equals(SQLITE_MAGIC))) return fail(`${file} is not an SQLite 3 database`);

  // --- what the journal holds
  let jgen: number | undefined;
  try {
    jgen = decodeHeader(jbuf, journal);
  } catch {
    jgen = undefined;
  }
  const scan = scanRecords(jbuf.subarray(Math.min(HEADER_SIZE, jbuf.length)), HEADER_SIZE);
  const dgen = db ? db.readUInt32BE(GEN_AT) : 0;
  const base = db ? db.readUInt32BE(BASE_OFFSET_AT) : 0;
  const follows = db !== undefined && jgen !== undefined && nextGen(jgen) === dgen && base >= HEADER_SIZE && base <= jbuf.length;
  const stale = db !== undefined && jgen !== undefined && jgen < dgen && !follows;
  const applicable = stale ? [] : scan.records.filter((r) => !follows || r.offset >= base);
  lines.push(
    `  journal ${journal}: ${jgen === undefined ? "unreadable header" : `generation ${jgen}`}, ${scan.records.length} intact record(s), ` +
      `${scan.damaged.length} damaged stretch(es)`,
  );
  for (const d of scan.damaged) {
    const last = d.offset + d.length === jbuf.length;
    lines.push(`  skipped: damaged bytes at offset ${d.offset} (${d.length} bytes)${last ? ", at the end (a torn tail of an interrupted write)" : ""}`);
  }
  if (stale) lines.push(`  the journal is older than the database file (generation ${dgen}), which already holds its records`);
  else if (follows) lines.push(`  the database file holds the journal up to offset ${base}; ${applicable.length} record(s) after it`);

  // --- situations that need the admin's choice
  const own = db !== undefined && isOwnImage(db);
  const problems: string[] = [];
  if (!db && scan.records.length) problems.push(`${file} is missing`);
  if (db && !own && applicable.length) problems.push(`${file} was changed by another program since the journal was started`);
  if (jgen === undefined) problems.push(`the journal's header is unreadable (its generation is unknown)`);
  else if (db && jgen > dgen) problems.push(`the journal (generation ${jgen}) is newer than ${file} (generation ${dgen}); was the file replaced?`);
  if (problems.length && !opts.discardJournal && !opts.applyAnyway) {
    return fail(`${problems.join("; ")}. Choose --discard-journal (keep the database file as it is) or --apply-anyway (replay the journal's intact records on it)`);
  }

  const stamp = (opts.now ?? new Date()).toISOString().replace(/[:.]/g, "-");
  const jAside = `${journal}.before-recovery-${stamp}`;
  const dir = path.dirname(file);
  if (opts.discardJournal) {
    fs.renameSync(journal, jAside);
    fsyncDir(dir);
    lines.push(`  journal discarded as asked: moved to ${jAside}; ${file} left as it is`);
    return { code: 0, lines };
  }

  // --- replay (on the DB file, or on an empty database with the schema)
  const toApply = opts.applyAnyway && (jgen === undefined || (db && jgen > dgen)) ? scan.records : applicable;
  const { SQL } = await loadSqlJs();
  const img = db ? Buffer.from(db) : undefined;
  if (img && (img[18] === 2 || img[19] === 2)) img[18] = img[19] = 1; // as loadFromDisk: WAL-mode file, read in rollback mode
  const sdb = img ? new SQL.Database(img) : new SQL.Database();
  let out: Buffer;
  let applied = 0;
  try {
    if (!img) for (const sql of opts.schema ?? []) sdb.run(sql);
    sdb.run("BEGIN");
    for (const rec of toApply) {
      sdb.run("SAVEPOINT rec");
      try {
        for (const [sql, params] of rec.statements as SqlStatement[]) sdb.run(sql, (params ?? []) as (string | number | null)[]);
        sdb.run("RELEASE rec");
        applied++;
      } catch (err) {
        sdb.run("ROLLBACK TO rec");
        sdb.run("RELEASE rec");
        lines.push(`  skipped: the record at offset ${rec.offset} (${rec.length} bytes) failed to apply: ${errMsg(err)}`);
      }
    }
    sdb.run("COMMIT");
    const gen = nextGen(Math.max(dgen, jgen ?? 0));
    out = stampImage(sdb.export(), gen, 0);
  } finally {
    sdb.close();
  }

  // --- keep the originals, install the result, remove the journal (in this order: a crash
  // leaves the originals aside and either the old files or the new DB with a stale journal)
  const kept: string[] = [];
  if (db) {
    const dAside = `${file}.before-recovery-${stamp}`;
    keepAside(file, dAside);
    kept.push(dAside);
  }
  keepAside(journal, jAside);
  kept.push(jAside);
  fsyncDir(dir);
  atomicWriteSync(file, out, lookOf(db ? file : journal));
  fs.rmSync(journal, { force: true });
  fsyncDir(dir);
  lines.push(`  applied ${applied} of ${toApply.length} record(s); ${file} is complete (generation ${out.readUInt32BE(GEN_AT)}); journal removed`);
  lines.push(`  originals kept: ${kept.join(", ")}`);
  return { code: 0, lines };
}
