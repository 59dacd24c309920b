/**
 * A background compaction that fails while its image is built on this thread (no worker: the
 * export path) fails alone: writes go on, the error is kept for inspection, and the next attempt
 * waits (the worker path is covered in durable.test.ts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-compfail-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

test("an image write failing on this thread rejects no write and is not retried at once", async () => {
  let attempts = 0;
  const db = await DurableSqlite.open(path.join(root, "a.sqlite"), {
    compactThresholdBytes: 4096,
    compactInWorker: false,
    hooks: {
      at(point) {
        if (point !== "compact:before-image-write") return;
        attempts++;
        throw new Error("No space left on device (simulated)");
      },
    },
  });
  try {
    await db.execute([[`CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)`]]);
    for (let i = 0; i < 100; i++) await db.execute([[`INSERT INTO t VALUES (?, ?)`, [`k${i}`, "x".repeat(200)]]]);
    assert.is(attempts, 1, "attempted once the journal passed the threshold, then paused");
    assert.match(String(db.lastCompactionError), /compaction failed: No space left on device/);
    assert.is(db.all(`SELECT count(*) AS n FROM t`)[0]!.n, 100, "every write kept");
  } finally {
    await db.close();
  }
});

test.run();
