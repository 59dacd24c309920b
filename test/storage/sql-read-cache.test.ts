/**
 * The SQL driver's cache of map reads (sql-read-cache.ts) and the writer lock kept between commits
 * (durable-db.ts): a cached or lock-protected read must never hide a change, whoever made it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import type { KeyvalStore, MapStore } from "../../src/storage/types.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-sqlcache-"));
let n = 0;
const newFile = () => path.join(root, String(n++), "prosody.sqlite");
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

async function open(file = newFile()) {
  const db = await openSqlDatabase(file);
  const provider = createSqlProvider({ host: "example.com", db });
  return { db, file, provider, map: provider.open("m", "map") as MapStore };
}

test("a cached read hands out a fresh copy every time", async () => {
  const { db, map } = await open();
  await map.set(null, "k", { list: [1, 2], nested: { a: "x" } });
  const first = (await map.get(null, "k")) as { list: number[]; nested: { a: string } };
  first.list.push(3);
  first.nested.a = "changed";
  // A hit (served from the cached, already decoded value) is a copy too, however deep.
  const second = (await map.get(null, "k")) as { list: number[]; nested: { a: string } };
  assert.equal(second, { list: [1, 2], nested: { a: "x" } });
  second.list.push(4);
  second.nested.a = "changed again";
  assert.equal(await map.get(null, "k"), { list: [1, 2], nested: { a: "x" } });
  await db.close();
});

test("writes in this process are seen at once: set, delete, setKeys, deleteAll, keyval view, purge", async () => {
  const { db, provider, map } = await open();
  assert.is(await map.get(null, "k"), undefined); // a cached "absent"
  await map.set(null, "k", "one");
  assert.is(await map.get(null, "k"), "one");
  await map.set(null, "k", "two");
  assert.is(await map.get(null, "k"), "two");
  await map.set(null, "k", undefined);
  assert.is(await map.get(null, "k"), undefined);
  await map.setKeys(null, { k: "three", j: 1 });
  assert.is(await map.get(null, "k"), "three");
  await map.deleteAll("k");
  assert.is(await map.get(null, "k"), undefined);

  // The keyval view of the same store writes the same rows.
  await map.set("alice", "k", "mapped");
  assert.is(await map.get("alice", "k"), "mapped");
  const kv = provider.open("m", "keyval") as KeyvalStore;
  await kv.set("alice", { k: "via keyval" });
  assert.is(await map.get("alice", "k"), "via keyval");

  // A second map store object on the same (host, store) writes too.
  const other = provider.open("m", "map") as MapStore;
  await other.set("alice", "k", "other object");
  assert.is(await map.get("alice", "k"), "other object");

  // purge removes every store of the user.
  await provider.purge!("alice");
  assert.is(await map.get("alice", "k"), undefined);
  await db.close();
});

test("a read while a write is being committed never keeps the old value afterwards", async () => {
  const { db, map } = await open();
  await map.set(null, "k", "old");
  assert.is(await map.get(null, "k"), "old");
  const pending = map.set(null, "k", "new");
  await map.get(null, "k"); // may see either value: the write has not been acknowledged yet
  await pending;
  assert.is(await map.get(null, "k"), "new");
  await db.close();
});

test("large values and many keys (beyond the cache's bounds) read back correctly", async () => {
  const { db, map } = await open();
  const big = "x".repeat(40_000);
  await map.set(null, "big", big);
  assert.is(await map.get(null, "big"), big);
  await map.set(null, "big", big + "y");
  assert.is(await map.get(null, "big"), big + "y");
  for (let i = 0; i < 600; i++) await map.set(null, `k${i}`, i);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 600; i++) assert.is(await map.get(null, `k${i}`), i);
  }
  await db.close();
});

test("another writer (its own lock, as another process) is seen at once, even for a cached key", async () => {
  const a = await open();
  // A separate instance on the same file: its own copy and its own lock socket, exactly what a
  // prosodyctl process has.
  const bdb = await openSqlDatabase(a.file);
  const b = createSqlProvider({ host: "example.com", db: bdb }).open("m", "map") as MapStore;
  try {
    await a.map.set(null, "key", "from a"); // A commits and keeps the writer lock
    assert.is(await a.map.get(null, "key"), "from a"); // cached by A

    const started = Date.now();
    await b.set(null, "key", "from b"); // B must get the lock from idle A promptly
    assert.ok(Date.now() - started < 2000, `B waited ${Date.now() - started} ms for the lock`);
    assert.is(await a.map.get(null, "key"), "from b");

    await a.map.set(null, "key", "a again"); // A takes the lock back from idle B
    assert.is(await b.get(null, "key"), "a again");
    await b.set(null, "key", undefined);
    assert.is(await a.map.get(null, "key"), undefined);
  } finally {
    await bdb.close();
    await a.db.close();
  }
});

test("the lock kept between commits is handed over while a commit's fdatasync is still running", async () => {
  const a = await open();
  const bdb = await openSqlDatabase(a.file);
  const b = createSqlProvider({ host: "example.com", db: bdb }).open("m", "map") as MapStore;
  try {
    // Many writes from both sides at once: each side keeps asking for the lock the other holds.
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      writes.push(a.map.set(null, `a${i}`, i));
      writes.push(b.set(null, `b${i}`, i));
    }
    await Promise.all(writes);
    for (let i = 0; i < 50; i++) {
      assert.is(await a.map.get(null, `b${i}`), i);
      assert.is(await b.get(null, `a${i}`), i);
    }
  } finally {
    await bdb.close();
    await a.db.close();
  }
});

test.run();
