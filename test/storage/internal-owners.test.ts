/**
 * The internal driver's locks and parse cache belong to an owner (a runtime), not to the process:
 * two owners in one process keep their own, and still exclude each other on the same file through
 * the cross-process lock (two ProcessLock instances exclude each other as two processes do), so
 * concurrent writes of two runtimes in one process lose nothing.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRuntime } from "../../src/create-runtime.js";
import { createInternalProvider, createInternalShared } from "../../src/storage/drivers/internal.js";
import type { KeyvalStore, MapStore } from "../../src/storage/types.js";
import { makeConfig } from "../helpers/config.js";
import { recordOf } from "../helpers/records.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-internal-owners-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = () => {
  const d = path.join(root, String(n++));
  fs.mkdirSync(d);
  return d;
};

const KEYS = 60;

test("two providers with their own state, one file: concurrent map sets lose nothing", async () => {
  const dir = newDir();
  const a = createInternalProvider({ dataPath: dir, host: "example.com", shared: createInternalShared() });
  const b = createInternalProvider({ dataPath: dir, host: "example.com", shared: createInternalShared() });
  const ma = a.open("invite_token", "map") as MapStore;
  const mb = b.open("invite_token", "map") as MapStore;
  const writes: Promise<void>[] = [];
  for (let i = 0; i < KEYS; i++) {
    writes.push(ma.set(null, `a${i}`, { n: i }));
    writes.push(mb.set(null, `b${i}`, { n: i }));
    // A pause now and then, so that each provider's writes come in several batches.
    if (i % 10 === 9) await new Promise((r) => setImmediate(r));
  }
  await Promise.all(writes);
  const all = recordOf(await (a.open("invite_token", "keyval") as KeyvalStore).get(null));
  assert.is(Object.keys(all ?? {}).length, 2 * KEYS, "every key of both providers is in the file");
  for (let i = 0; i < KEYS; i++) {
    assert.equal(all[`a${i}`], { n: i });
    assert.equal(all[`b${i}`], { n: i });
  }
});

test("two providers with their own state: one setIfAbsent wins, take hands a value out once", async () => {
  const dir = newDir();
  const providers = [0, 1, 2, 3].map(() => createInternalProvider({ dataPath: dir, host: "example.com", shared: createInternalShared() }));
  const won = await Promise.all(providers.map((p, i) => (p.open("accounts", "keyval") as KeyvalStore).setIfAbsent("alice", { password: `p${i}` })));
  assert.is(won.filter(Boolean).length, 1, "exactly one creation succeeds");
  await (providers[0]!.open("invite_token", "map") as MapStore).set(null, "tok", { jid: "alice@example.com" });
  const taken = await Promise.all(providers.map((p) => (p.open("invite_token", "map") as MapStore).take(null, "tok")));
  assert.is(taken.filter((v) => v !== undefined).length, 1, "the value is taken once");
});

test("two runtimes in one process: each keeps its own state, writes of both land in one file", async () => {
  const dir = newDir();
  const config = () => makeConfig({ data_path: dir }, { "example.com": {}, "example.org": {} });
  const rt1 = createRuntime({ config: config(), processType: "prosodyctl" });
  const rt2 = createRuntime({ config: config(), processType: "prosodyctl" });
  try {
    const m1 = await rt1.storage.open("example.com", "invite_token", "map");
    const m2 = await rt2.storage.open("example.com", "invite_token", "map");
    await rt1.storage.open("example.org", "invite_token", "map");
    const s1 = (rt1.shared("/*/storage_internal/files") as { files?: object }).files;
    const s2 = (rt2.shared("/*/storage_internal/files") as { files?: object }).files;
    assert.ok(s1 && s2, "each runtime holds its internal driver's state in its shared table");
    assert.is.not(s1, s2, "two runtimes do not share locks or caches");

    const writes: Promise<void>[] = [];
    for (let i = 0; i < KEYS; i++) writes.push(m1.set(null, `one${i}`, { n: i }), m2.set(null, `two${i}`, { n: i }));
    await Promise.all(writes);
    const all = await (await rt1.storage.open("example.com", "invite_token")).get(null);
    assert.is(Object.keys(all ?? {}).length, 2 * KEYS, "no update of either runtime is lost");
  } finally {
    await rt1.stop();
    await rt2.stop();
  }
});

test.run();
