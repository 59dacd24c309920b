/**
 * The compaction snapshot worker: it refuses files that are not the ones named (another process
 * compacted meanwhile), and it runs at the lowest CPU priority (Linux).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { snapshots } from "../../src/storage/sqlite/snapshot-client.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-snap-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

test("a snapshot of replaced files is refused; a current one matches the store", async () => {
  const file = path.join(root, "a.sqlite");
  const db = await DurableSqlite.open(file);
  await db.execute([[`CREATE TABLE t (k TEXT)`]]);
  await db.execute([[`INSERT INTO t VALUES ('one')`]]);
  const journal = file + ".sqljs-journal";
  const dbIno = fs.statSync(file).ino;
  const jIno = fs.statSync(journal).ino;
  const to = fs.statSync(journal).size;
  const gen = db.generation;
  const err = await snapshots.take({ dbFile: file, dbIno: dbIno + 1, journalFile: journal, jIno, jGen: gen, to }).then(() => undefined, (e: Error) => e);
  assert.match(String(err), /was replaced/);
  const image = await snapshots.take({ dbFile: file, dbIno, journalFile: journal, jIno, jGen: gen, to });
  const copy = path.join(root, "copy.sqlite");
  fs.writeFileSync(copy, image);
  const other = await DurableSqlite.open(copy);
  assert.equal(other.all(`SELECT k FROM t`), [{ k: "one" }]);
  await other.close();
  await db.close();
});

test("the worker thread runs at nice 19 (Linux)", () => {
  if (process.platform !== "linux") return;
  const nices = fs.readdirSync("/proc/self/task").map((tid) => {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
  assert.ok(nices.includes(19), `thread nice values: ${nices.join(",")}`);
  assert.is(nices[0], 0, "the main thread keeps its priority");
});

test.run();
