/**
 * The storage conformance suite every driver must pass (keyval + map semantics of Prosody's
 * storagemanager). Every store is opened through a real storage manager (a Runtime whose config
 * says `storage = "conformance"`, served by a plugin that provides the driver under test), so the
 * suite sees what modules see: driver resolution, the map shim over keyval, Prosody's argument
 * checks, purge across stores. Usage, in a driver's test file:
 *
 *   storageConformance("memory", async () => ({ provider: createMemoryProvider(), cleanup: async () => {} })).run();
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Runtime } from "../../src/core/runtime.js";
import {
  REMOVE,
  StorageError,
  type KeyvalStore,
  type MapStore,
  type StorageProvider,
  type StoreRecord,
  type StoreValue,
} from "../../src/storage/types.js";
import { makeConfig } from "../helpers/config.js";
import { pluginDir } from "../helpers/plugins.js";
import { skip } from "../helpers/skip.js";
import { recordOf } from "../helpers/records.js";
import { sequenceTests } from "./conformance-sequences.js";

type Made = { provider: StorageProvider; cleanup(): Promise<void> };

/** Where the tests open stores: a runtime and one of its hosts. */
interface Stores {
  rt: Runtime;
  host: string;
}
interface Ctx {
  made?: Made;
  rt?: Runtime;
  provider: Stores;
  /** What the manager asked the driver for: "host store type → native|none". */
  opens: string[];
}

/** The driver under test is offered natively here, and without map stores (so the shim) there. */
const HOST = "example.com";
const NO_MAP_HOST = "nomap.example";

/** What the plugin hands the storage manager on each host; set before each test. */
const SLOT = "__prosodyTsStorageConformance";
const slot = globalThis as unknown as Record<string, ((host: string) => StorageProvider) | undefined>;
const PLUGINS = pluginDir({
  storage_conformance: `export default function (module) { module.provides("storage", globalThis.${SLOT}(module.host)); }`,
});

function providerFor(made: StorageProvider, host: string, opens: string[]): StorageProvider {
  return {
    name: "conformance",
    open(store, type) {
      // A provider whose open(…, "map") gives nothing makes the manager build the map shim over keyval.
      const s = host === NO_MAP_HOST && type === "map" ? undefined : made.open(store, type);
      opens.push(`${host} ${store} ${type} → ${s ? "native" : "none"}`);
      return s;
    },
    purge: made.purge?.bind(made),
  };
}

function runtime(): Runtime {
  const config = makeConfig({ plugin_paths: [PLUGINS], storage: "conformance" }, { [HOST]: {}, [NO_MAP_HOST]: {} });
  return new Runtime({ config, processType: "server" });
}

/** Opens on first use, then every call goes to the store the manager handed out. */
function once<S>(open: () => Promise<S>): () => Promise<S> {
  let opened: Promise<S> | undefined;
  return () => (opened ??= open());
}

function keyval({ rt, host }: Stores, name: string): KeyvalStore {
  const s = once(() => rt.storage.open(host, name, "keyval"));
  return {
    type: "keyval",
    get: async (user) => (await s()).get(user),
    set: async (user, data) => (await s()).set(user, data),
    setIfAbsent: async (user, data) => (await s()).setIfAbsent(user, data),
    users: async () => (await s()).users(),
  };
}

/** The store the storage manager would hand out: native map, or the shim over keyval. */
function map({ rt, host }: Stores, name: string): MapStore {
  const s = once(() => rt.storage.open(host, name, "map"));
  return {
    type: "map",
    get: async (user, key) => (await s()).get(user, key),
    set: async (user, key, value) => (await s()).set(user, key, value),
    setKeys: async (user, changes) => (await s()).setKeys(user, changes),
    take: async (user, key) => (await s()).take(user, key),
    getAll: async (key) => (await s()).getAll(key),
    deleteAll: async (key) => (await s()).deleteAll(key),
  };
}

/** The same data, on the host where the driver offers no map store. */
function withoutMap(stores: Stores): Stores {
  return { ...stores, host: NO_MAP_HOST };
}

const sorted = (a: string[]) => [...a].sort();

export function storageConformance(name: string, makeProvider: () => Promise<Made>) {
  const test = suite<Ctx>(`storage conformance: ${name}`, {} as Ctx);

  test.before.each(async (ctx) => {
    const made = (ctx.made = await makeProvider());
    const opens: string[] = (ctx.opens = []);
    slot[SLOT] = (host) => providerFor(made.provider, host, opens);
    ctx.rt = runtime();
    ctx.provider = { rt: ctx.rt, host: HOST };
  });
  test.after.each(async (ctx) => {
    await ctx.rt?.stop();
    await ctx.made?.cleanup();
    ctx.made = ctx.rt = slot[SLOT] = undefined;
  });

  test("stores come from the storage manager: native map stores, or its shim over keyval", async (ctx) => {
    await map(ctx.provider, "m").set("u", "k", 1);
    await map(withoutMap(ctx.provider), "m").set("u", "k2", 2);
    await keyval(ctx.provider, "kv").get("u");
    assert.equal(ctx.opens, [`${HOST} m map → native`, `${NO_MAP_HOST} m map → none`, `${NO_MAP_HOST} m keyval → native`, `${HOST} kv keyval → native`]);
    assert.equal(await keyval(ctx.provider, "m").get("u"), { k: 1, k2: 2 }, "one record, whichever way it was written");
  });

  // ---------------------------------------------------------------- keyval

  test("keyval: absent record is undefined", async ({ provider }) => {
    const kv = keyval(provider, "accounts");
    assert.is(await kv.get("nobody"), undefined);
    assert.is(await kv.get(null), undefined);
  });

  test("keyval: nested data round trip", async ({ provider }) => {
    const kv = keyval(provider, "accounts");
    const rec: StoreRecord = {
      token: "abc",
      nested: { y: true, deeper: { n: 3, list: ["a", "b", { c: 1 }] } },
      list: ["a", "b"],
      count: 42,
    };
    await kv.set("alice", rec);
    assert.equal(await kv.get("alice"), rec);
  });

  test("keyval: null user is separate from users", async ({ provider }) => {
    const kv = keyval(provider, "accounts");
    await kv.set(null, { host: "wide" });
    await kv.set("alice", { user: "alice" });
    assert.equal(await kv.get(null), { host: "wide" });
    assert.equal(await kv.get("alice"), { user: "alice" });
    await kv.set(null, undefined);
    assert.is(await kv.get(null), undefined);
    assert.equal(await kv.get("alice"), { user: "alice" });
  });

  test("keyval: set(undefined), set(null) and set({}) delete", async ({ provider }) => {
    const kv = keyval(provider, "accounts");
    await kv.set("a", { x: 1 });
    await kv.set("a", undefined);
    assert.is(await kv.get("a"), undefined);
    await kv.set("a", { x: 1 });
    await kv.set("a", null);
    assert.is(await kv.get("a"), undefined);
    await kv.set("a", { x: 1 });
    await kv.set("a", {});
    assert.is(await kv.get("a"), undefined);
    assert.not.ok((await kv.users()).includes("a"));
  });

  test("keyval: set replaces the whole record", async ({ provider }) => {
    const kv = keyval(provider, "accounts");
    await kv.set("a", { x: 1, y: 2 });
    await kv.set("a", { z: 3 });
    assert.equal(await kv.get("a"), { z: 3 });
  });

  test("keyval: users() lists users with records", async ({ provider }) => {
    const kv = keyval(provider, "accounts");
    assert.equal(await kv.users(), []);
    await kv.set("alice", { a: 1 });
    await kv.set("bob", { b: 1 });
    await kv.set("carol", { c: 1 });
    await kv.set("carol", undefined);
    await keyval(provider, "other").set("dave", { d: 1 });
    assert.equal(sorted(await kv.users()), ["alice", "bob"]);
    // The host-wide record: not listed, or listed as "" (SQL), never as anything else.
    await kv.set(null, { h: 1 });
    const users = sorted(await kv.users());
    assert.ok(users.join() === "alice,bob" || users.join() === ",alice,bob", users.join());
  });

  test("keyval: setIfAbsent writes only a record that does not exist yet", async ({ provider }) => {
    const kv = keyval(provider, "accounts");
    assert.is(await kv.setIfAbsent("alice", { salt: "s1", n: 1 }), true);
    assert.equal(await kv.get("alice"), { salt: "s1", n: 1 });
    assert.is(await kv.setIfAbsent("alice", { salt: "s2" }), false);
    assert.equal(await kv.get("alice"), { salt: "s1", n: 1 }, "the existing record is left alone");
    assert.is(await kv.setIfAbsent(null, { h: true }), true);
    assert.equal(await kv.get(null), { h: true });
    assert.is(await kv.get("bob"), undefined);
    const bad = await kv.setIfAbsent("carol", { n: NaN }).catch((e) => e);
    assert.instance(bad, StorageError);
    assert.is(await kv.get("carol"), undefined);
  });

  test("keyval: of concurrent setIfAbsent of one user exactly one writes", async ({ provider }) => {
    const kv = keyval(provider, "accounts");
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => kv.setIfAbsent("dave", { who: i })));
    assert.is(results.filter(Boolean).length, 1);
    assert.equal(await kv.get("dave"), { who: results.indexOf(true) });
  });

  test("keyval: stores are independent", async ({ provider }) => {
    await keyval(provider, "s1").set("alice", { v: 1 });
    await keyval(provider, "s2").set("alice", { v: 2 });
    assert.equal(await keyval(provider, "s1").get("alice"), { v: 1 });
    assert.equal(await keyval(provider, "s2").get("alice"), { v: 2 });
  });

  test("keyval: scalar types (unicode, ints, floats, booleans, empty object, arrays)", async ({ provider }) => {
    const kv = keyval(provider, "types");
    const rec: StoreRecord = {
      s: "plain",
      u: "ünïcödé ✓ 𝄞 日本",
      ctl: "tab\tnl\nquote\"back\\slash/",
      empty: "",
      i: 10000,
      neg: -7,
      zero: 0,
      big: 2 ** 40,
      f: 1.5,
      tiny: 0.1,
      t: true,
      no: false,
      obj: {},
      arr: [1, "two", false, 3.25],
      nested: { arr: [{ a: [] as string[] }] },
    };
    await kv.set("x", rec);
    const got = recordOf(await kv.get("x"));
    const { nested, ...rest } = rec;
    const { nested: gotNested, ...gotRest } = got;
    assert.equal(gotRest, rest);
    // An empty Lua table has no array/object distinction: [] may come back as [] or {}.
    const inner = ((gotNested as StoreRecord).arr as StoreRecord[])[0]!.a;
    assert.ok(Array.isArray(inner) ? inner.length === 0 : JSON.stringify(inner) === "{}");
    assert.type(got.i, "number");
    assert.type(got.t, "boolean");
    assert.type(got.s, "string");
  });

  test("keyval: values are copies", async ({ provider }) => {
    const kv = keyval(provider, "copies");
    const rec = { a: { b: [1, 2] }, c: "x" };
    await kv.set("u", rec);
    rec.a.b.push(3);
    rec.c = "changed";
    const got = recordOf(await kv.get("u"));
    assert.equal(got, { a: { b: [1, 2] }, c: "x" });
    (got.a as { b: number[] }).b.push(99);
    got.c = "mutated";
    assert.equal(await kv.get("u"), { a: { b: [1, 2] }, c: "x" });
  });

  test("keyval: null/undefined members are dropped", async ({ provider }) => {
    const kv = keyval(provider, "nulls");
    await kv.set("u", { a: 1, b: undefined, c: null } as unknown as StoreRecord);
    assert.equal(await kv.get("u"), { a: 1 });
    await kv.set("v", { b: undefined } as unknown as StoreRecord);
    assert.is(await kv.get("v"), undefined);
  });

  test("keyval: unstorable values reject with StorageError", async ({ provider }) => {
    const kv = keyval(provider, "bad");
    for (const bad of [{ n: NaN }, { n: Infinity }, { f: () => 1 }, { a: [1, null, 2] }]) {
      try {
        await kv.set("u", bad as unknown as StoreRecord);
        assert.unreachable(`accepted ${String(Object.keys(bad))}`);
      } catch (err) {
        assert.instance(err, StorageError);
      }
    }
    assert.is(await kv.get("u"), undefined);
  });

  // ---------------------------------------------------------------- map

  const mapTests = (label: string, pick: (p: Stores) => Stores) => {
    test(`${label}: absent key is undefined`, async ({ provider }) => {
      const m = map(pick(provider), "invite_token");
      assert.is(await m.get(null, "nope"), undefined);
      assert.is(await m.get("alice", "nope"), undefined);
    });

    test(`${label}: unstorable values reject with StorageError and store nothing`, async ({ provider }) => {
      const m = map(pick(provider), "bad");
      const cycle: Record<string, unknown> = { a: 1 };
      cycle.self = cycle;
      const bads: unknown[] = [
        { f: () => 1 },
        { nested: { n: NaN } },
        { when: new Date(0) },
        cycle,
        [1, null, 2],
        { deep: { list: ["x", Symbol("s")] } },
      ];
      for (const bad of bads) {
        try {
          await m.set(null, "k", bad as StoreValue);
          assert.unreachable(`accepted ${JSON.stringify(Object.keys(bad as object))}`);
        } catch (err) {
          assert.instance(err, StorageError);
        }
      }
      assert.is(await m.get(null, "k"), undefined);
    });

    test(`${label}: set/get round trip, null user separate`, async ({ provider }) => {
      const m = map(pick(provider), "invite_token");
      const invite = { token: "tok1", uri: "xmpp:example.test?register;preauth=tok1", additional_data: { groups: {} }, created_at: 1795932662, allow_registration: true };
      await m.set(null, "tok1", invite);
      await m.set("alice", "tok1", "alice's");
      assert.equal(await m.get(null, "tok1"), invite);
      assert.is(await m.get("alice", "tok1"), "alice's");
      await m.set(null, "n", 12);
      await m.set(null, "f", 2.5);
      await m.set(null, "b", false);
      await m.set(null, "e", {});
      await m.set(null, "arr", ["x", "y"]);
      assert.is(await m.get(null, "n"), 12);
      assert.is(await m.get(null, "f"), 2.5);
      assert.is(await m.get(null, "b"), false);
      assert.equal(await m.get(null, "e"), {});
      assert.equal(await m.get(null, "arr"), ["x", "y"]);
    });

    test(`${label}: set(undefined) deletes the key only`, async ({ provider }) => {
      const m = map(pick(provider), "invite_token");
      await m.set("u", "a", 1);
      await m.set("u", "b", 2);
      await m.set("u", "a", undefined);
      assert.is(await m.get("u", "a"), undefined);
      assert.is(await m.get("u", "b"), 2);
      await m.set("u", "b", undefined);
      assert.is(await m.get("u", "b"), undefined);
    });

    test(`${label}: map and keyval of the same name are one record`, async ({ provider }) => {
      const p = pick(provider);
      const m = map(p, "shared");
      const kv = keyval(p, "shared");
      await m.set("u", "a", { x: 1 });
      await m.set("u", "b", "two");
      assert.equal(await kv.get("u"), { a: { x: 1 }, b: "two" });
      await kv.set("u", { c: true });
      assert.is(await m.get("u", "a"), undefined);
      assert.is(await m.get("u", "c"), true);
      await m.set("u", "c", undefined);
      assert.is(await kv.get("u"), undefined);
    });

    test(`${label}: setKeys with REMOVE`, async ({ provider }) => {
      const m = map(pick(provider), "keys");
      await m.setKeys("u", { a: 1, b: { deep: ["x"] }, c: "three" });
      assert.is(await m.get("u", "a"), 1);
      assert.equal(await m.get("u", "b"), { deep: ["x"] });
      await m.setKeys("u", { a: REMOVE, c: "3", d: false });
      assert.is(await m.get("u", "a"), undefined);
      assert.equal(await m.get("u", "b"), { deep: ["x"] });
      assert.is(await m.get("u", "c"), "3");
      assert.is(await m.get("u", "d"), false);
      await m.setKeys(null, { h: 1 });
      assert.is(await m.get(null, "h"), 1);
      assert.is(await m.get("u", "h"), undefined);
    });

    test(`${label}: getAll / deleteAll`, async ({ provider }) => {
      const m = map(pick(provider), "roster");
      await m.set("alice", "k", "A");
      await m.set("bob", "k", { b: 1 });
      await m.set("bob", "other", "keep");
      await m.set(null, "k", "host-wide");
      await m.set("carol", "other", "C");
      const all = await m.getAll("k");
      assert.equal(
        [...all.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
        [
          ["", "host-wide"],
          ["alice", "A"],
          ["bob", { b: 1 }],
        ],
      );
      assert.equal((await m.getAll("missing")).size, 0);
      await m.deleteAll("k");
      assert.equal((await m.getAll("k")).size, 0);
      assert.is(await m.get("alice", "k"), undefined);
      assert.is(await m.get(null, "k"), undefined);
      assert.is(await m.get("bob", "other"), "keep");
      assert.is(await m.get("carol", "other"), "C");
    });

    test(`${label}: values are copies`, async ({ provider }) => {
      const m = map(pick(provider), "copies");
      const v = { list: [1], o: { s: "x" } };
      await m.set("u", "k", v);
      v.list.push(2);
      v.o.s = "changed";
      const got = (await m.get("u", "k")) as typeof v;
      assert.equal(got, { list: [1], o: { s: "x" } });
      got.list.push(3);
      assert.equal(await m.get("u", "k"), { list: [1], o: { s: "x" } });
      const all = await m.getAll("k");
      (all.get("u") as typeof v).o.s = "mutated";
      assert.equal(await m.get("u", "k"), { list: [1], o: { s: "x" } });
    });

    test(`${label}: unicode keys and values`, async ({ provider }) => {
      const m = map(pick(provider), "unicode");
      await m.set("jüliet", "schlüssel ✓", "wert 🎉");
      assert.is(await m.get("jüliet", "schlüssel ✓"), "wert 🎉");
    });

    test(`${label}: the key "__proto__" is an ordinary key`, async ({ provider }) => {
      const stores = pick(provider);
      const m = map(stores, "protos");
      await m.set("u", "__proto__", { polluted: true });
      await m.set("u", "plain", 1);
      assert.equal(await m.get("u", "__proto__"), { polluted: true });
      const rec = (await keyval(stores, "protos").get("u"))!;
      assert.ok(Object.prototype.hasOwnProperty.call(rec, "__proto__"), "stored as an own key");
      assert.is(Object.getPrototypeOf(rec), Object.prototype, "not as the record's prototype");
      assert.equal(Object.keys(rec).sort(), ["__proto__", "plain"]);
      await m.set("u", "__proto__", undefined);
      assert.is(await m.get("u", "__proto__"), undefined);
      assert.equal(await m.get("u", "plain"), 1);
    });

    test(`${label}: getAll / deleteAll refuse an empty or non-string key with Prosody's error`, async ({ provider }) => {
      const m = map(pick(provider), "argcheck");
      await m.set("alice", "true", "kept");
      await m.set("alice", "", "empty key kept");
      await m.set(null, "1", "kept too");
      for (const bad of ["", true, 1, null, undefined, {}]) {
        const ga = await m.getAll(bad as string).then(() => "resolved", (e: Error) => e);
        assert.instance(ga, TypeError, `getAll(${JSON.stringify(bad)})`);
        assert.is((ga as Error).message, "get_all only supports non-empty string keys");
        const da = await m.deleteAll(bad as string).then(() => "resolved", (e: Error) => e);
        assert.instance(da, TypeError, `deleteAll(${JSON.stringify(bad)})`);
        assert.is((da as Error).message, "delete_all only supports non-empty string keys");
      }
      assert.is(await m.get("alice", "true"), "kept");
      assert.is(await m.get("alice", ""), "empty key kept");
      assert.is(await m.get(null, "1"), "kept too");
    });

    test(`${label}: users and keys of the wrong type are refused; undefined user is nil`, async ({ provider }) => {
      const m = map(pick(provider), "argtypes");
      for (const [what, call] of [
        ["get user 1", () => m.get(1 as unknown as string, "k")],
        ["set user {}", () => m.set({} as unknown as string, "k", 1)],
        ["get key 5", () => m.get("u", 5 as unknown as string)],
        ["set key true", () => m.set("u", true as unknown as string, 1)],
        ["take key null", () => m.take("u", null as unknown as string)],
        ["setKeys array", () => m.setKeys("u", [1] as unknown as Record<string, StoreValue>)],
        ["keyval get user 2", () => keyval(pick(provider), "argtypes").get(2 as unknown as string)],
      ] as const) {
        assert.instance(await (call as () => Promise<unknown>)().then(() => "resolved", (e) => e), TypeError, what);
      }
      assert.equal((await keyval(pick(provider), "argtypes").users()).filter((u) => u !== ""), []);
      await m.set(undefined as unknown as null, "k", "host-wide");
      assert.is(await m.get(null, "k"), "host-wide");
      assert.is(await m.get(undefined as unknown as null, "k"), "host-wide");
    });

    test(`${label}: take removes the key and hands back its value, once`, async ({ provider }) => {
      const m = map(pick(provider), "claims");
      const invite = { token: "t1", expires: 1795932662, additional_data: { roles: ["x"] } };
      await m.set(null, "t1", invite);
      await m.set(null, "other", "stays");
      await m.set("alice", "t1", 42);
      assert.equal(await m.take(null, "t1"), invite);
      assert.is(await m.get(null, "t1"), undefined);
      assert.is(await m.take(null, "t1"), undefined);
      assert.is(await m.get(null, "other"), "stays");
      assert.is(await m.get("alice", "t1"), 42);
      assert.is(await m.take("alice", "t1"), 42);
      assert.is(await keyval(pick(provider), "claims").get("alice"), undefined); // emptied record deleted
      assert.is(await m.take("nobody", "t1"), undefined);
      await m.set("u", "", "empty key");
      assert.is(await m.take("u", ""), "empty key");
      assert.is(await m.get("u", ""), undefined);
    });

    test(`${label}: of concurrent takes of one key exactly one gets the value`, async ({ provider }) => {
      const m = map(pick(provider), "race");
      await m.set(null, "tok", { n: 1 });
      const got = await Promise.all(Array.from({ length: 10 }, () => m.take(null, "tok")));
      assert.equal(got.filter((v) => v !== undefined), [{ n: 1 }]);
    });

    test(`${label}: changes made after a take are applied after it`, async ({ provider }) => {
      const m = map(pick(provider), "order");
      const first = m.set("u", "k", "v1");
      const taken = m.take("u", "k");
      const second = m.set("u", "k", "v2");
      await Promise.all([first, second]);
      assert.is(await taken, "v1");
      assert.is(await m.get("u", "k"), "v2");
    });

    test(`${label}: concurrent sets of one user in one process are not lost`, async ({ provider }) => {
      const m = map(pick(provider), "conc");
      await Promise.all(Array.from({ length: 20 }, (_, i) => m.set("u", `k${i}`, i)));
      for (let i = 0; i < 20; i++) assert.is(await m.get("u", `k${i}`), i);
    });
  };

  mapTests("map", (p) => p);
  mapTests("map shim (open(map) → undefined)", withoutMap);

  sequenceTests(test, { keyval, map, withoutMap });

  test("purge deletes a user everywhere", async (ctx) => {
    const { provider } = ctx;
    if (!ctx.made?.provider.purge) return skip(ctx, `the ${name} driver has no purge`);
    await keyval(provider, "s1").set("alice", { a: 1 });
    await keyval(provider, "s2").set("alice", { a: 2 });
    await keyval(provider, "s1").set("bob", { b: 1 });
    await provider.rt.storage.purge("alice", HOST);
    assert.is(await keyval(provider, "s1").get("alice"), undefined);
    assert.is(await keyval(provider, "s2").get("alice"), undefined);
    assert.equal(await keyval(provider, "s1").get("bob"), { b: 1 });
  });

  return test;
}
