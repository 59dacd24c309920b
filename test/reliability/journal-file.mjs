// Reads the record layout of a sql.js change journal (format: src/storage/sqlite/journal.ts) and
// flips single bits in it, for the soak script. Independent of the host's own parser on purpose.
import { closeSync, openSync, readSync, writeSync, fsyncSync } from "node:fs";

const HEADER = 16;

/** Complete records in order: { start, payloadStart, end } byte offsets. Stops at a short tail. */
export function journalRecords(bytes) {
  const out = [];
  let pos = HEADER;
  while (bytes.length - pos >= 8) {
    const len = bytes.readUInt32LE(pos);
    if (len > bytes.length - pos - 8) break;
    out.push({ start: pos, payloadStart: pos + 8, end: pos + 8 + len });
    pos += 8 + len;
  }
  return out;
}

/** Inverts bit `bit` (counted from the start of the file) in place, and syncs. */
export function flipBit(file, bit) {
  const fd = openSync(file, "r+");
  try {
    const b = Buffer.alloc(1);
    const at = Math.floor(bit / 8);
    readSync(fd, b, 0, 1, at);
    b[0] ^= 1 << bit % 8;
    writeSync(fd, b, 0, 1, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
