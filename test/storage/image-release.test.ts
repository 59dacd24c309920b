/**
 * Issue 15 item 3: a DB image (the store's size) is given back as soon as it is loaded or written,
 * not left for a full garbage collection that an idle server may not run for minutes (it stayed
 * resident: 40 MB after start, 70 MB after an idle fold, at 100k-180k invites). Runs in its own
 * process (each test file does), so its ArrayBuffer memory is only what this file allocates.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { releaseBuffer } from "../../src/storage/sqlite/fsutil.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-imgrelease-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
const file = path.join(root, "prosody.sqlite");
const MB = 1 << 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const arrayBuffers = () => process.memoryUsage().arrayBuffers;

/** Waits (polling, generously) until `cond` holds; false if it never does. */
async function eventually(cond: () => boolean, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) return false;
    await sleep(20);
  }
  return true;
}

// ~12 MB of rows: an image well over what the process holds in ArrayBuffers otherwise, and under
// V8's external-memory trigger for a collection (64 MB). Made of few rows of zeroblob(), so that
// building it allocates next to nothing in JavaScript and no collection runs meanwhile: without
// the release, the image stays.
const ROWS = 200;

test("a compaction's image does not stay in memory after it is written", async () => {
  const db = await DurableSqlite.open(file, { foldIdleMs: 0, compactInWorker: false });
  try {
    await db.execute([[`CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)`]]);
    await db.execute(Array.from({ length: ROWS }, (_, i) => [`INSERT INTO t VALUES (?, zeroblob(60000))`, [`k${i}`]] as const));
    const before = arrayBuffers();
    await db.compact();
    const size = fs.statSync(file).size;
    assert.ok(size > 10 * MB, `the image is big (${size} bytes)`);
    const freed = await eventually(() => arrayBuffers() < before + size / 4);
    assert.ok(freed, `ArrayBuffer memory after the compaction: ${(arrayBuffers() / MB).toFixed(1)} MB, image ${(size / MB).toFixed(1)} MB`);
    assert.is(db.get(`SELECT count(*) AS n FROM t`)?.n, ROWS, "the store is intact");
  } finally {
    await db.close();
  }
});

test("the image a store is loaded from does not stay in memory", async () => {
  const size = fs.statSync(file).size;
  const before = arrayBuffers();
  const db = await DurableSqlite.open(file, { foldIdleMs: 0 });
  try {
    assert.is(db.get(`SELECT count(*) AS n FROM t`)?.n, ROWS);
    const freed = await eventually(() => arrayBuffers() < before + size / 4);
    assert.ok(freed, `ArrayBuffer memory after the load: ${(arrayBuffers() / MB).toFixed(1)} MB, image ${(size / MB).toFixed(1)} MB`);
  } finally {
    await db.close();
  }
});

test("releaseBuffer leaves small buffers and views into a larger buffer alone", () => {
  const small = Buffer.alloc(1024, 1);
  releaseBuffer(small);
  assert.is(small.length, 1024);
  const big = new Uint8Array(2 * MB);
  const view = big.subarray(16);
  releaseBuffer(view);
  assert.is(big.length, 2 * MB, "a view at an offset does not own the memory");
  releaseBuffer(big);
  assert.is(big.length, 0, "a big buffer owning its memory is released (detached)");
});

test.run();
