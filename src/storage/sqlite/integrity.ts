/**
 * When a database and its change journal must not be used as they are, and what the admin is told.
 *
 * Three situations make every process refuse the database (server start, prosodyctl, the
 * compaction worker) without changing any file, because going on would silently lose or undo
 * committed data:
 * - the journal has a damaged record with intact records after it (JournalDamagedError, journal.ts);
 * - the database file was changed by another program (real Prosody, sqlite3, a restore, an edit)
 *   while the journal still holds records for the image we wrote: replaying them on top could
 *   bring back an invite that was used meanwhile (ForeignDatabaseError);
 * - the database file is missing while the journal holds records (MissingDatabaseError): the
 *   records continue a database we no longer have; a fresh empty one would silently drop them.
 * Each message is one line starting with a fixed phrase, names the files, and points at
 * `prosodyctl storage recover-journal` (src/cli/storage.ts, recovery in recover.ts).
 */
import { StorageError } from "../types.js";
import { readAtSync } from "./fsutil.js";
import { parseRecords } from "./journal.js";

const RECOVER = "prosodyctl [--config FILE] storage recover-journal";

/** The database file was not written by this host (or was changed since) while journal records wait for it. */
export class ForeignDatabaseError extends StorageError {
  override name = "ForeignDatabaseError";
  constructor(
    readonly dbFile: string,
    readonly journalFile: string,
    readonly records: number,
  ) {
    super(
      `database changed by another program: ${dbFile} is not the file this host wrote (changed by real Prosody, sqlite3 or a restore?) ` +
        `while its journal ${journalFile} holds ${records} record(s) not yet in it; replaying them could undo those changes, so ` +
        `${dbFile} is refused (no file was changed). Stop every process using it, then run either ` +
        `"${RECOVER} --discard-journal ${dbFile}" (keep the file as it is; the journal is kept aside) or ` +
        `"${RECOVER} --apply-anyway ${dbFile}" (replay the journal on top of the file)`,
    );
  }
}

/** The database file is missing while its journal holds records. */
export class MissingDatabaseError extends StorageError {
  override name = "MissingDatabaseError";
  constructor(
    readonly dbFile: string,
    readonly journalFile: string,
  ) {
    super(
      `database file missing: ${dbFile} does not exist but its journal ${journalFile} holds records that continue it; ` +
        `refusing to start an empty database (no file was changed). Restore ${dbFile}, or stop every process using it and run ` +
        `"${RECOVER} --apply-anyway ${dbFile}" (replay the journal into an empty database) or "${RECOVER} --discard-journal ${dbFile}"`,
    );
  }
}

/** True for the refusals above and JournalDamagedError: the database is unusable until recovered. */
export function isRefusal(err: unknown): err is StorageError {
  return err instanceof StorageError && ["JournalDamagedError", "ForeignDatabaseError", "MissingDatabaseError"].includes(err.name);
}

/**
 * A DB file we did not write (or that was changed since) with journal records [from, size) waiting
 * to be replayed on it: throws ForeignDatabaseError. Only a torn tail (no complete record) is fine.
 */
export function refuseForeignRecords(dbFile: string, journalFile: string, jfd: number, from: number, size: number): void {
  if (size <= from) return;
  const { records } = parseRecords(readAtSync(jfd, from, size - from), journalFile, from);
  if (records.length) throw new ForeignDatabaseError(dbFile, journalFile, records.length);
}
