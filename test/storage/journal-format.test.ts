/** The change journal's record parsing: damage in the middle vs a torn tail (see journal.ts). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { HEADER_SIZE, JournalDamagedError, crc32, encodeRecord, parseRecords, scanRecords } from "../../src/storage/sqlite/journal.js";

test("parseRecords: damage before intact records throws with offset and count; a torn tail does not", () => {
  const recs = [0, 1, 2, 3, 4].map((i) => encodeRecord([[`INSERT INTO t VALUES (?)`, [i]]]));
  const body = Buffer.concat(recs);
  assert.is(parseRecords(body, "j", HEADER_SIZE).records.length, 5);
  // a bit flipped in record 1's payload: records 2..4 follow intact
  const bad = Buffer.from(body);
  bad[recs[0]!.length + 12]! ^= 1;
  try {
    parseRecords(bad, "/x/prosody.sqlite.sqljs-journal", HEADER_SIZE);
    assert.unreachable("should throw");
  } catch (err) {
    assert.instance(err, JournalDamagedError);
    const e = err as JournalDamagedError;
    assert.is(e.offset, HEADER_SIZE + recs[0]!.length);
    assert.is(e.intactAfter, 3);
    assert.match(e.message, /^journal damaged: \/x\/prosody\.sqlite\.sqljs-journal: damaged record at byte \d+, 3 intact record\(s\) after it;/);
    assert.match(e.message, "storage recover-journal /x/prosody.sqlite");
  }
  // a flipped length field, too
  const badLen = Buffer.from(body);
  badLen[recs[0]!.length + 1]! ^= 0x10;
  assert.throws(() => parseRecords(badLen, "j", HEADER_SIZE), (e: unknown) => e instanceof JournalDamagedError && e.intactAfter === 3);
  // torn tails: a partial last record, a bad CRC in the last record, zeros after the last record
  const four = Buffer.concat(recs.slice(0, 4));
  for (const tail of [recs[4]!.subarray(0, 11), Buffer.from(recs[4]!).fill(0x41, 9, 10), Buffer.alloc(4096)]) {
    const p = parseRecords(Buffer.concat([four, tail]), "j", HEADER_SIZE);
    assert.is(p.records.length, 4);
    assert.is(p.validLength, four.length);
  }
  // recovery's scan finds every intact record around the damage
  const scan = scanRecords(bad, HEADER_SIZE);
  assert.is(scan.records.length, 4);
  assert.equal(scan.damaged, [{ offset: HEADER_SIZE + recs[0]!.length, length: recs[1]!.length }]);
});

test("a checksummed record that is not a statement list is damage even at the end", () => {
  const good = encodeRecord([["INSERT INTO t VALUES (1)"]]);
  const payload = Buffer.from("{}");
  const rec = Buffer.alloc(8 + payload.length);
  rec.writeUInt32LE(payload.length, 0);
  rec.writeUInt32LE(crc32(payload), 4);
  payload.copy(rec, 8);
  assert.throws(() => parseRecords(Buffer.concat([good, rec]), "j", HEADER_SIZE), (e: unknown) => e instanceof JournalDamagedError && e.intactAfter === 0);
});

test.run();
