/**
 * What is cut off the end of a change journal, and what the admin is told about it.
 *
 * A writer that takes the lock cuts everything after the last complete, valid record (journal.ts:
 * only damage at the very end is treated so). Two kinds of tail look alike to the parser but not
 * to us:
 * - an incomplete record (its length runs past the end of the file, or not even a whole length
 *   field): an append cut short by a crash or `kill -9` (write() leaves a prefix). It was never
 *   acknowledged, since a write is acknowledged only after its fdatasync; a warning says so.
 * - a complete-length record whose checksum does not match: a power loss between the size update
 *   and the data reaching the disk (again never acknowledged), or damage to an acknowledged
 *   record. We cannot tell which, so its bytes are kept beside the journal before the cut
 *   (`<journal>.torn-<UTC time>`) and the warning names that file: nothing is lost silently.
 */
import fs from "node:fs";
import { FILE_MODE, readAtSync } from "./fsutil.js";
import { RECORD_OVERHEAD } from "./journal.js";

export type TornTailLog = (level: "warn", message: string) => void;

/** Before cutting [from, size) off the journal open as `fd`: keeps damaged bytes aside and warns. */
export function reportTornTail(fd: number, journalFile: string, from: number, size: number, log: TornTailLog | undefined): void {
  const bytes = readAtSync(fd, from, size - from);
  const complete = bytes.length >= RECORD_OVERHEAD && bytes.readUInt32LE(0) <= bytes.length - RECORD_OVERHEAD;
  if (!complete) {
    log?.(
      "warn",
      `${journalFile}: cut ${bytes.length} byte(s) of an incomplete record after the last complete one (offset ${from}): ` +
        `an append interrupted by a crash, never acknowledged`,
    );
    return;
  }
  const kept = `${journalFile}.torn-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  let where: string;
  try {
    const out = fs.openSync(kept, "wx", FILE_MODE);
    try {
      fs.writeSync(out, bytes);
      fs.fsyncSync(out);
    } finally {
      fs.closeSync(out);
    }
    where = `its bytes are kept in ${kept}`;
  } catch (err) {
    where = `its bytes could not be kept (${err instanceof Error ? err.message : String(err)})`;
  }
  log?.(
    "warn",
    `${journalFile}: the last record (offset ${from}, ${bytes.length} bytes) is damaged (checksum mismatch) and was cut: ` +
      `a write interrupted by a power loss (never acknowledged), or damage to an acknowledged write; ${where}`,
  );
}
