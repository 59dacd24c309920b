/**
 * Issue #11 item 1: a write that cannot take its lock (another process holds it past the timeout)
 * fails alone; once the lock is free, later writes of the same file or database succeed. Before the
 * fix, a failed batch of the internal driver stayed pending and every later change of that file got
 * the old rejection at once, until restart.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import { createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import { StorageError, type KeyvalStore, type MapStore } from "../../src/storage/types.js";
import { holdLockInAnotherProcess } from "../helpers/lock-holder-client.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-lockfail-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

async function rejects(p: Promise<unknown>, what: string): Promise<Error> {
  const err = await p.then(() => undefined, (e: Error) => e);
  assert.ok(err, `${what} should have failed`);
  assert.instance(err, StorageError, what);
  return err!;
}

test("internal: a change that timed out waiting for the lock does not poison later changes of that file", async () => {
  const dir = fs.mkdtempSync(path.join(root, "internal-"));
  const provider = createInternalProvider({ dataPath: dir, host: "example.com", lockTimeoutMs: 300 });
  const map = provider.open("invite_token", "map") as MapStore;
  await map.set(null, "before", 1);
  const held = await holdLockInAnotherProcess("internal", provider.pathOf("invite_token", null), dir);
  try {
    const err = await rejects(map.set(null, "during", 2), "set while another process holds the lock");
    assert.match(err.message, "timed out");
    // Several changes queued while the lock is still held fail too, each on its own.
    await Promise.all([rejects(map.set(null, "a", 1), "set a"), rejects(map.setKeys(null, { b: 2 }), "setKeys b")]);
  } finally {
    await held.release();
  }
  await map.set(null, "after", 3);
  const held2 = await holdLockInAnotherProcess("internal", provider.pathOf("invite_token", null), dir);
  try {
    await rejects(map.take(null, "before"), "take while another process holds the lock");
  } finally {
    await held2.release();
  }
  await Promise.all([map.set(null, "x", 1), map.set(null, "y", 2), map.setKeys(null, { z: 3 })]);
  assert.is(await map.take(null, "before"), 1);
  const kv = provider.open("invite_token", "keyval") as KeyvalStore;
  assert.equal(await kv.get(null), { after: 3, x: 1, y: 2, z: 3 });
});

test("sql: a commit that timed out waiting for the lock does not poison later ones", async () => {
  const dir = fs.mkdtempSync(path.join(root, "sql-"));
  const file = path.join(dir, "prosody.sqlite");
  const db = await openSqlDatabase(file, { lockTimeoutMs: 300 });
  try {
    const map = createSqlProvider({ host: "example.com", db }).open("invite_token", "map") as MapStore;
    await map.set(null, "before", 1);
    const held = await holdLockInAnotherProcess("sql", file);
    try {
      await rejects(map.set(null, "during", 2), "set while another process holds the lock");
      await Promise.all([rejects(map.set(null, "a", 1), "set a"), rejects(map.take(null, "before"), "take")]);
    } finally {
      await held.release();
    }
    await map.set(null, "after", 3);
    await Promise.all([map.set(null, "x", 1), map.setKeys(null, { y: 2 })]);
    assert.is(await map.take(null, "before"), 1);
    assert.equal([...(await map.getAll("after")).entries()], [["", 3]]);
    assert.is(await map.get(null, "during"), undefined);
    assert.is(await map.get(null, "y"), 2);
  } finally {
    await db.close();
  }
});

test.run();
