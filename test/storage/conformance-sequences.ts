/**
 * The conformance suite's part for keyval records that are Lua sequences (top-level arrays, e.g.
 * Snikket's mod_invites_bootstrap list): registered by conformance.ts on each driver's suite, with
 * its helpers (stores opened through a real storage manager, native or shim map views).
 */
import type { Test } from "uvu";
import * as assert from "uvu/assert";
import { StorageError, type KeyvalStore, type MapStore, type StoreValue } from "../../src/storage/types.js";

interface Helpers<P> {
  keyval(p: P, name: string): KeyvalStore;
  map(p: P, name: string): MapStore;
  withoutMap(p: P): P;
}

const LIST: StoreValue[] = [
  { index: 1, timestamp: 1700000000, result: "https://example.test/invite/a/" },
  { index: 2, timestamp: 1700000001.5, result: "xmpp:example.test?register;preauth=b" },
];

async function rejects(what: string, p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, StorageError, `${what} must reject with a StorageError`);
  return err as StorageError;
}

export function sequenceTests<P>(test: Test<{ provider: P }>, { keyval, map, withoutMap }: Helpers<P>): void {
  test("keyval sequence: an array round-trips as an array (host-wide and user records), as copies", async ({ provider }) => {
    const kv = keyval(provider, "invites_bootstrap");
    await kv.set(null, LIST);
    await kv.set("alice", ["x", 2, true, ["nested", { a: [1, 2] }], {}]);
    assert.equal(await kv.get(null), LIST);
    assert.ok(Array.isArray(await kv.get(null)), "not a record with the keys 1, 2");
    // A nested empty table reads back as {} (Lua has one empty table; Prosody's JSON writes {}).
    assert.equal(await kv.get("alice"), ["x", 2, true, ["nested", { a: [1, 2] }], {}]);
    const got = (await kv.get(null)) as StoreValue[];
    (got[0] as { index: number }).index = 99;
    got.push("more");
    assert.equal(await kv.get(null), LIST, "what get returned is the caller's copy");
    // SQL lists the host-wide record as "" (as Prosody does).
    assert.equal((await kv.users()).filter((u) => u !== ""), ["alice"]);
  });

  test("keyval sequence: a big one (internal: over the parse cache's threshold) reads back whole, as copies", async ({ provider }) => {
    const kv = keyval(provider, "seq_big");
    const big: StoreValue[] = Array.from({ length: 1500 }, (_, i) => ({ index: i, result: `https://example.test/invite/${"x".repeat(40)}${i}/` }));
    await kv.set(null, big);
    assert.equal(await kv.get(null), big);
    const got = (await kv.get(null)) as StoreValue[];
    got.length = 1;
    (got[0] as { index: number }).index = -1;
    assert.equal(await kv.get(null), big, "a second read (from the cache) is whole");
    await kv.set(null, [...big, "one more"]);
    assert.equal(((await kv.get(null)) as StoreValue[]).length, 1501);
    await kv.set(null, { a: 1 });
    assert.equal(await kv.get(null), { a: 1 });
  });

  test("keyval sequence: set([]) deletes; a sequence and a record replace each other", async ({ provider }) => {
    const kv = keyval(provider, "seq_replace");
    await kv.set("u", LIST);
    await kv.set("u", []);
    assert.is(await kv.get("u"), undefined);
    await kv.set("u", LIST);
    await kv.set("u", { a: 1 });
    assert.equal(await kv.get("u"), { a: 1 });
    await kv.set("u", ["only"]);
    assert.equal(await kv.get("u"), ["only"]);
  });

  test("keyval sequence: setIfAbsent writes a sequence only where there is no record", async ({ provider }) => {
    const kv = keyval(provider, "seq_absent");
    assert.is(await kv.setIfAbsent("u", LIST), true);
    assert.is(await kv.setIfAbsent("u", ["other"]), false);
    assert.equal(await kv.get("u"), LIST);
  });

  test("keyval sequence: holes and named members are refused, nothing stored", async ({ provider }) => {
    const kv = keyval(provider, "seq_bad");
    await kv.set("u", ["kept"]);
    const holes = ["a", undefined, "c"] as unknown as StoreValue[];
    // eslint-disable-next-line no-sparse-arrays
    const sparse = ["a", , "c"] as unknown as StoreValue[];
    const named = Object.assign(["a", "b"], { name: "lost otherwise" }) as StoreValue[];
    await rejects("a sequence with an undefined item", kv.set("u", holes));
    await rejects("a sparse array", kv.set("u", sparse));
    const err = await rejects("an array with a named member", kv.set("u", named));
    assert.match(err.message, /named members \(found "name"\)/);
    await rejects("setIfAbsent of an array with a named member", kv.setIfAbsent("v", named));
    assert.equal(await kv.get("u"), ["kept"]);
    assert.is(await kv.get("v"), undefined);
  });

  for (const [label, pick] of [
    ["native map", (p: P) => p],
    ["map shim", withoutMap],
  ] as const) {
    test(`keyval sequence, ${label}: a sequence has no string keys; removing one leaves it as it is`, async ({ provider }) => {
      const kv = keyval(pick(provider), "seq_map");
      const m = map(pick(provider), "seq_map");
      await kv.set("u", LIST);
      await kv.set("w", { "1": "a string key" });
      assert.is(await m.get("u", "1"), undefined, 'Prosody: list["1"] of a sequence is nil');
      assert.is(await m.get("u", "0"), undefined);
      assert.is(await m.take("u", "1"), undefined);
      assert.equal([...(await m.getAll("1"))], [["w", "a string key"]]);
      await m.set("u", "1", undefined);
      await m.setKeys("u", { index: undefined as unknown as StoreValue });
      await m.deleteAll("1");
      assert.equal(await kv.get("u"), LIST);
      assert.is(await kv.get("w"), undefined, "the string key went");
    });
  }
}
