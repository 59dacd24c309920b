/**
 * Group commit of the internal driver's map updates (src/storage/internal/file-updates.ts), counted
 * in writes, not timed: writers that come back one by one over a few milliseconds after a slow
 * write (as HTTP clients do after a big invite_token.dat's rewrite) all share the next write instead
 * of alternating between a batch of one and a batch of the others, and the count adapts when
 * writers leave.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DataFiles } from "../../src/storage/internal/data-files.js";
import { FileUpdates } from "../../src/storage/internal/file-updates.js";
import { ParseCache } from "../../src/storage/internal/parse-cache.js";
import type { StoreRecord } from "../../src/storage/types.js";
import { serialLock } from "../helpers/serial-lock.js";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * DataFiles whose writes each take `slowMs` longer (a 35 MB file's write and fsync take ~30 ms),
 * counting the changes each write carries; one lock per file, in this process only.
 */
function setup(slowMs: number) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-group-"));
  const files = new DataFiles(new ParseCache(), () => {});
  const batches: number[] = [];
  const write = files.write.bind(files);
  let seen = 0;
  files.write = async (file, rec) => {
    const n = Object.keys(rec ?? {}).length;
    batches.push(n - seen);
    seen = n;
    await sleep(slowMs);
    return write(file, rec);
  };
  const updates = new FileUpdates(files, serialLock());
  const file = path.join(dir, "host", "store.dat");
  return { dir, files, updates, file, batches };
}

/** `writers` writers, each writing `rounds` times, writer w coming back w/2 ms after its change is on disk. */
async function closedLoop(updates: FileUpdates, file: string, writers: number, rounds: number, tag: string): Promise<void> {
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let r = 0; r < rounds; r++) {
        await sleep(w / 2);
        await updates.modify(file, [[`${tag}w${w}r${r}`, r]]);
      }
    }),
  );
}

test("writers coming back over several milliseconds after a slow write share the next one", async () => {
  const { dir, files, updates, file, batches } = setup(20);
  try {
    const rounds = 8;
    await closedLoop(updates, file, 16, rounds, "");
    assert.is(Object.keys((await files.readOwned(file)) as StoreRecord).length, 16 * rounds);
    // Nobody is known to wait at first: the first writer goes alone, the other fifteen share the
    // next write, and from then on every write holds all sixteen (the last ones, those left).
    // Alternating batches would take about twice as many writes.
    assert.ok(batches.length <= rounds + 2, `${16 * rounds} changes in ${batches.length} writes: ${batches.join(" ")}`);
    assert.ok(batches.slice(2, -1).every((n) => n === 16), `batches: ${batches.join(" ")}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("when writers leave, a batch stops waiting for them after one write's time, then expects only those left", async () => {
  const { dir, files, updates, file, batches } = setup(20);
  try {
    await closedLoop(updates, file, 16, 4, "a");
    const before = batches.length;
    const waitedOut = updates.stats.waitedOut;
    await closedLoop(updates, file, 4, 6, "b");
    // Only the first batch after the twelve left waits for them in vain (not one per round).
    assert.is(updates.stats.waitedOut - waitedOut, 1, "batches that waited out their time");
    assert.is(Object.keys((await files.readOwned(file)) as StoreRecord).length, 16 * 4 + 4 * 6);
    const after = batches.slice(before);
    assert.ok(after.length <= 6 + 2, `${4 * 6} changes in ${after.length} writes: ${after.join(" ")}`);
    assert.is(after.slice(-4).join(" "), "4 4 4 4", `batches: ${after.join(" ")}`);
    // A lone writer afterwards: its first write waits for the four once, its next ones not at all.
    for (let i = 1; i <= 3; i++) await updates.modify(file, [["lone", i]]);
    assert.is(((await files.readOwned(file)) as StoreRecord).lone, 3);
    assert.is(updates.stats.waitedOut - waitedOut, 2, "batches that waited out their time");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
