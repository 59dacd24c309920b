/**
 * Changing members of a big data file by splicing its bytes (src/storage/internal/splice.ts):
 * - planSplice gives exactly the bytes a full serialisation of the changed record gives, and its
 *   index then locates every member as a fresh serialisation's would (seeded random batches,
 *   including removals, replacements, re-sets, "__proto__" and keys that must fall back);
 * - through the internal driver's map store, a big invite_token.dat changed by random sets, removals
 *   and takes holds, after each step, exactly the serialisation of the expected record, and reads
 *   give the expected values (also after a file written by someone else, whose order differs).
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import { serializeFileBytes, type EntryIndex } from "../../src/storage/lua/serialize.js";
import { DataFiles } from "../../src/storage/internal/data-files.js";
import { FileUpdates } from "../../src/storage/internal/file-updates.js";
import { ParseCache } from "../../src/storage/internal/parse-cache.js";
import { Rope } from "../../src/storage/internal/rope.js";
import { planSplice, type KeyChange } from "../../src/storage/internal/splice.js";
import type { MapStore, StoreRecord, StoreValue } from "../../src/storage/types.js";
import { applyMapChanges } from "../../src/storage/values.js";
import { seededRandom } from "../helpers/seed.js";
import { serialLock } from "../helpers/serial-lock.js";

const { random } = seededRandom();
const int = (n: number) => Math.floor(random() * n);
const KEYS = ["a", "b", "c", "tok1", "tok2", "__proto__", "é", 'q"uote', "x y", "17", "0", "00", "1e3", "-1"];
const invite = (i: number): StoreRecord => ({ token: `t${i}`, type: "register", created_at: 1700000000 + i, additional_data: { source: "x" } });

function randomRecord(n: number): StoreRecord {
  const rec: StoreRecord = {};
  for (let i = 0; i < n; i++) applyMapChanges(rec, [[int(3) === 0 ? KEYS[int(KEYS.length)]! : `k${int(n * 2)}`, invite(i)]]);
  return rec;
}

function randomChanges(rec: StoreRecord): KeyChange[] {
  const existing = Object.keys(rec);
  return Array.from({ length: 1 + int(6) }, (): KeyChange => {
    const key = existing.length > 0 && int(2) === 0 ? existing[int(existing.length)]! : int(2) === 0 ? KEYS[int(KEYS.length)]! : `n${int(1000)}`;
    return [key, int(3) === 0 ? undefined : (invite(int(1e6)) as StoreValue)];
  });
}

test("a spliced file is byte for byte the serialisation of the changed record, and its index a fresh one", () => {
  let spliced = 0;
  let full = 0;
  for (let round = 0; round < 400; round++) {
    const rec = randomRecord(1 + int(40));
    const index: EntryIndex = new Map();
    let bytes = Rope.of(serializeFileBytes(rec, undefined, index));
    for (let step = 0; step < 8; step++) {
      const changes = randomChanges(rec);
      const plan = planSplice(bytes, index, changes);
      const changed = applyMapChanges(rec, changes);
      if (plan.kind === "unchanged") {
        assert.not.ok(changed, "a plan that changes nothing is a batch that changes nothing");
        continue;
      }
      if (plan.kind === "full") {
        full++;
        if (Object.keys(rec).length === 0) break;
        index.clear();
        bytes = Rope.of(serializeFileBytes(rec, undefined, index));
        continue;
      }
      spliced++;
      const fresh: EntryIndex = new Map();
      const expected = serializeFileBytes(rec, undefined, fresh);
      assert.is(plan.bytes.flat().toString("latin1"), expected.toString("latin1"));
      assert.ok(plan.bytes.equals(expected));
      assert.not.ok(plan.bytes.equals(Buffer.concat([expected.subarray(0, -1), Buffer.from("x")])));
      plan.commit(index);
      assert.equal([...index], [...fresh], "the index locates every member, in order");
      bytes = plan.bytes;
    }
  }
  assert.ok(spliced > 1000, `most batches are spliced (${spliced} spliced, ${full} fell back)`);
  assert.ok(full > 0, "batches adding an array-index key or emptying the record fall back");
});

test("a rope of many small changes is flattened at its part limit, and stays exact", () => {
  const rec: StoreRecord = { first: 1 };
  const index: EntryIndex = new Map();
  let bytes = Rope.of(serializeFileBytes(rec, undefined, index));
  let most = 0;
  for (let i = 0; i < 600; i++) {
    const changes: KeyChange[] = i % 50 === 49 ? [[`k${i - 40}`, undefined]] : [[`k${i}`, i]];
    const plan = planSplice(bytes, index, changes);
    assert.is(plan.kind, "splice");
    if (plan.kind !== "splice") return;
    applyMapChanges(rec, changes);
    plan.commit(index);
    bytes = plan.bytes;
    most = Math.max(most, bytes.parts.length);
  }
  assert.ok(most > 400 && most <= 512, `the parts grew to ${most}, never past 512`);
  assert.ok(bytes.parts.length < most, "and were flattened");
  assert.is(bytes.flat().toString("latin1"), serializeFileBytes(rec).toString("latin1"));
});

test("a new array-index key or an emptied record falls back to a full write", () => {
  const index: EntryIndex = new Map();
  const bytes = Rope.of(serializeFileBytes({ a: 1, b: 2 }, undefined, index));
  assert.is(planSplice(bytes, index, [["17", 1]]).kind, "full");
  assert.is(planSplice(bytes, index, [["a", undefined], ["b", undefined]]).kind, "full");
  assert.is(planSplice(bytes, index, [["zz", undefined]]).kind, "unchanged");
  assert.is(planSplice(bytes, index, [["017", 1]]).kind, "splice", "not an array index: goes last");
});

test("a big invite_token.dat changed through the map store always holds the expected record", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-splice-"));
  try {
    // Written by "someone else" first: a different member order than ours, no index.
    const model: StoreRecord = {};
    const tokens: string[] = [];
    for (let i = 0; i < 3000; i++) tokens.push(`pre${String(i).padStart(21, "0")}`);
    const file = path.join(dir, "example%2ecom", "invite_token.dat");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    for (const t of [...tokens].reverse()) model[t] = invite(tokens.indexOf(t));
    fs.writeFileSync(file, serializeFileBytes(model));
    const map = createInternalProvider({ dataPath: dir, host: "example.com" }).open("invite_token", "map") as MapStore;
    const recent: string[] = []; // keys set lately: taken, removed and read back more often
    const someKey = () => {
      const existing = Object.keys(model);
      const fresh = recent.filter((k) => Object.prototype.hasOwnProperty.call(model, k));
      return fresh.length > 0 && int(2) === 0 ? fresh[int(fresh.length)]! : existing[int(existing.length)]!;
    };
    for (let step = 0; step < 120; step++) {
      const op = int(4);
      const touched: string[] = [];
      if (op === 0) {
        const key = someKey();
        assert.equal(await map.take(null, key), model[key], "take gives the value last set");
        assert.is(await map.take(null, key), undefined, "and only once");
        applyMapChanges(model, [[key, undefined]]);
        touched.push(key);
      } else if (op === 1) {
        // Several sets at once join one batch.
        const batch = Array.from({ length: 1 + int(5) }, (): KeyChange => [int(4) === 0 ? someKey() : `new${int(1e9)}`, invite(int(1e6)) as StoreValue]);
        await Promise.all(batch.map(([k, v]) => map.set(null, k, v)));
        applyMapChanges(model, batch);
        touched.push(...batch.map(([k]) => k));
      } else if (op === 2) {
        const key = someKey();
        await map.set(null, key, undefined);
        applyMapChanges(model, [[key, undefined]]);
        touched.push(key);
      } else {
        const key = `new${int(1e9)}`;
        await map.set(null, key, invite(step) as StoreValue);
        applyMapChanges(model, [[key, invite(step) as StoreValue]]);
        touched.push(key);
      }
      recent.push(...touched);
      if (step === 0) {
        // Our first write serialised the whole record, in the order we now hold it.
        assert.is(fs.readFileSync(file, "latin1"), serializeFileBytes(model).toString("latin1"));
      }
      for (const k of touched) assert.equal(await map.get(null, k), model[k], `reads see the change of ${k} at once`);
    }
    assert.is(fs.readFileSync(file, "latin1"), serializeFileBytes(model).toString("latin1"));
    // A fresh reader (another process) sees the same.
    const again = createInternalProvider({ dataPath: dir, host: "example.com" }).open("invite_token", "map") as MapStore;
    const some = Object.keys(model).slice(-5);
    for (const k of some) assert.equal(await again.get(null, k), model[k]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a big file changed by another writer to the same size is read again, also by concurrent readers", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-splice-"));
  try {
    const map = createInternalProvider({ dataPath: dir, host: "example.com" }).open("invite_token", "map") as MapStore;
    const other = createInternalProvider({ dataPath: dir, host: "example.com" }).open("other", "map") as MapStore;
    const big: Record<string, StoreValue> = {};
    for (let i = 0; i < 2000; i++) big[`tok${String(i).padStart(5, "0")}`] = invite(i) as StoreValue;
    await map.setKeys(null, big);
    await other.setKeys(null, big);
    assert.equal(await map.get(null, "tok00007"), big.tok00007, "cached now");
    const file = path.join(dir, "example%2ecom", "invite_token.dat");
    const before = fs.readFileSync(file, "latin1");
    const after = before.replace('["token"] = "t7";', '["token"] = "t8";');
    assert.is(after.length, before.length);
    assert.is.not(after, before);
    // In place: same size, same inode, a later mtime (an in-place rewrite within the file system's
    // timestamp tick of our write is the one change the cache cannot see: src/storage/internal/pins.ts).
    await new Promise((r) => setTimeout(r, 30));
    fs.writeFileSync(file, after, "latin1");
    const reads = await Promise.all([map.get(null, "tok00007"), other.get(null, "tok00007"), map.get(null, "tok00007"), other.get(null, "tok00001")]);
    assert.is((reads[0] as StoreRecord).token, "t8", "the change is seen");
    assert.is((reads[2] as StoreRecord).token, "t8");
    assert.equal(reads[1], big.tok00007, "the other file is read as it is");
    assert.equal(reads[3], big.tok00001);
    await map.set(null, "late", 1);
    assert.is((await map.get(null, "tok00007") as StoreRecord).token, "t8", "a later write keeps the outside change");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a cached file is not read again while unchanged; one renamed over it is, even with the same size and mtime", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-splice-"));
  const realOpen = fs.open;
  let opened = 0;
  try {
    const map = createInternalProvider({ dataPath: dir, host: "example.com" }).open("invite_token", "map") as MapStore;
    const big: Record<string, StoreValue> = {};
    for (let i = 0; i < 2000; i++) big[`tok${String(i).padStart(5, "0")}`] = invite(i) as StoreValue;
    await map.setKeys(null, big);
    const file = path.join(dir, "example%2ecom", "invite_token.dat");
    (fs as { open: unknown }).open = (...args: unknown[]) => {
      if (args[0] === file) opened++;
      return (realOpen as (...a: unknown[]) => unknown)(...args);
    };
    for (let i = 0; i < 5; i++) assert.equal(await map.get(null, "tok00003"), big.tok00003);
    assert.is(opened, 0, "five lookups, no read of the 300 kB file");
    // Replaced the way Prosody does (a new file renamed over it), keeping size and mtime.
    const st = fs.statSync(file, { bigint: true });
    const text = fs.readFileSync(file, "latin1").replace('["token"] = "t3";', '["token"] = "t4";');
    fs.writeFileSync(`${file}~`, text, "latin1");
    execFileSync("touch", ["-r", file, `${file}~`]); // the same mtime, to the nanosecond
    fs.renameSync(`${file}~`, file);
    assert.is(fs.statSync(file, { bigint: true }).size, st.size);
    assert.is(fs.statSync(file, { bigint: true }).mtimeNs, st.mtimeNs);
    assert.is((await map.get(null, "tok00003") as StoreRecord).token, "t4", "the new inode is seen");
    assert.is(opened, 1);
  } finally {
    (fs as { open: unknown }).open = realOpen;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("writers that come back together after a shared batch share the next one too", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-splice-"));
  try {
    const files = new DataFiles(new ParseCache(), () => {});
    const written: number[] = [];
    const write = files.write.bind(files);
    files.write = (file, rec) => {
      written.push(Object.keys(rec ?? {}).length);
      return write(file, rec);
    };
    const updates = new FileUpdates(files, serialLock());
    const file = path.join(dir, "host", "store.dat");
    // Eight writers, each writing again as soon as its change is on disk, as HTTP clients do when
    // their response arrives: their next changes reach the store a few event-loop turns apart.
    const rounds = 6;
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let r = 0; r < rounds; r++) {
          for (let turn = 0; turn < w; turn++) await new Promise((res) => setImmediate(res));
          await updates.modify(file, [[`w${w}r${r}`, r]]);
        }
      }),
    );
    assert.is(Object.keys((await files.readOwned(file))!).length, 8 * rounds);
    assert.ok(written.length <= rounds + 1, `${8 * rounds} changes in ${written.length} writes (alternating batches would take about ${2 * rounds})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
