/** Driver resolution and store opening with Prosody's storagemanager rules. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRuntime } from "../../src/create-runtime.js";
import { StorageError, StorageUnavailableError } from "../../src/storage/types.js";
import { makeConfig } from "../helpers/config.js";
import { captureLogs } from "../helpers/logs.js";
import { pluginDir } from "../helpers/plugins.js";

// A driver with keyval only (the manager must build map stores over it) that records opens.
const PLUGINS = pluginDir({
  // Fails to start while globalThis.flakyDown is set (a locked database, too many open files…).
  storage_flaky: `
    export default function (module) {
      if (globalThis.flakyDown) throw new Error("database is locked (test)");
      const data = new Map();
      module.provides("storage", {
        open(store, type) {
          if (type !== "map") return undefined;
          // A map store written before take() existed: the manager supplies one.
          return {
            type: "map",
            async get(u, k) { return data.get(store + "/" + (u ?? "") + "/" + k); },
            async set(u, k, v) { const key = store + "/" + (u ?? "") + "/" + k; if (v === undefined) data.delete(key); else data.set(key, v); },
            async setKeys() { throw new Error("unused"); },
            async getAll() { return new Map(); },
            async deleteAll() {},
          };
        },
      });
    }`,
  storage_kvonly: `
    const data = new Map();
    export const opened = [];
    export default function (module) {
      module.provides("storage", {
        open(store, type) {
          opened.push(store + ":" + type);
          if (type !== "keyval") return undefined;
          const key = (u) => store + "/" + (u ?? "");
          return {
            type: "keyval",
            async get(u) { const v = data.get(key(u)); return v === undefined ? undefined : structuredClone(v); },
            async set(u, v) { if (v && Object.keys(v).length) data.set(key(u), structuredClone(v)); else data.delete(key(u)); },
            async users() { return [...data.keys()].filter((k) => k.startsWith(store + "/") && k !== store + "/").map((k) => k.slice(store.length + 1)); },
          };
        },
      });
      module.exports.opened = opened;
    }`,
});

function rt(global: Record<string, any>, host: Record<string, any> = {}) {
  return createRuntime({ config: makeConfig({ plugin_paths: [PLUGINS], ...global }, { "h.example": host }), processType: "server" });
}

test("storage = 'driver' applies to every store; the driver module loads on first use", async () => {
  const r = rt({ storage: "memory" });
  assert.is(r.storage.driverName("h.example", "anything"), "memory");
  assert.is(r.modules.isLoaded("h.example", "storage_memory"), false);
  const s = await r.storage.open("h.example", "accounts");
  await s.set("u", { a: 1 });
  assert.equal(await s.get("u"), { a: 1 });
  assert.ok(r.modules.isLoaded("h.example", "storage_memory"));
});

test("storage as a table picks per store; others use default_storage; default is internal", async () => {
  const r = rt({ storage: { invite_token: "kvonly" }, default_storage: "memory" });
  assert.is(r.storage.driverName("h.example", "invite_token"), "kvonly");
  assert.is(r.storage.driverName("h.example", "accounts"), "memory");
  assert.is(rt({}).storage.driverName("h.example", "accounts"), "internal");
  // host value wins over the global one
  assert.is(rt({ storage: "memory" }, { storage: "kvonly" }).storage.driverName("h.example", "x"), "kvonly");
});

test("the legacy name sql2 means sql, with an error logged", async () => {
  const logs = captureLogs();
  try {
    assert.is(rt({ storage: "sql2" }).storage.driverName("h.example", "x"), "sql");
    assert.ok(logs.messages("error").some((m) => m.includes("'sql2' storage module has now been renamed to 'sql'")));
  } finally {
    logs.restore();
  }
});

test("a map store over a keyval-only driver is the shim over the keyval store of the same name", async () => {
  const r = rt({ storage: "kvonly" });
  const map = await r.storage.open("h.example", "invite_token", "map");
  assert.is(map.type, "map");
  await map.set(null, "t1", { x: 1 });
  await map.set(null, "t2", 2);
  const kv = await r.storage.open("h.example", "invite_token");
  assert.equal(await kv.get(null), { t1: { x: 1 }, t2: 2 });
  await map.set(null, "t1", undefined);
  assert.equal(await kv.get(null), { t2: 2 });
  const mod = r.modules.get("h.example", "storage_kvonly")!;
  assert.ok(mod.exports.opened.includes("invite_token:map"));
});

test("an unknown driver falls back to the null driver: a warning, reads find nothing, writes fail", async () => {
  const logs = captureLogs();
  try {
    const r = rt({ storage: "nosuchdriver" });
    const s = await r.storage.open("h.example", "accounts");
    assert.is(await s.get("u"), undefined);
    const err = await s.set("u", { a: 1 }).catch((e) => e);
    assert.instance(err, StorageError);
    assert.match(err.message, "no data storage active");
    assert.ok(logs.messages("warn").includes("Falling back to null driver for accounts storage on h.example"));
    const m = await r.storage.open("h.example", "tokens", "map");
    assert.instance(await m.set(null, "k", 1).catch((e) => e), StorageError);
  } finally {
    logs.restore();
  }
});

test("a driver that exists but fails to start: the open rejects with StorageUnavailableError, the next open starts it", async () => {
  const logs = captureLogs();
  try {
    const r = rt({ storage: "flaky" });
    (globalThis as any).flakyDown = true;
    const err = await r.storage.open("h.example", "keys", "map").catch((e) => e);
    assert.instance(err, StorageUnavailableError);
    assert.instance(err, StorageError);
    assert.match(err.message, "database is locked (test)");
    assert.instance(await r.storage.open("h.example", "keys", "map").catch((e) => e), StorageUnavailableError, "still down: still an error, never an empty store");
    (globalThis as any).flakyDown = false;
    const m = await r.storage.open("h.example", "keys", "map");
    await m.set(null, "k", "v");
    assert.is(await m.get(null, "k"), "v");
    // take() for a map store without one: get + delete, serialised in this process.
    const got = await Promise.all([m.take(null, "k"), m.take(null, "k")]);
    assert.equal(got, ["v", undefined]);
  } finally {
    (globalThis as any).flakyDown = false;
    logs.restore();
  }
});

test("every store handed out checks Prosody's argument rules (native map, shim, null driver)", async () => {
  for (const storage of ["memory", "kvonly", "nosuchdriver"]) {
    const logs = captureLogs();
    try {
      const m = await rt({ storage }).storage.open("h.example", "tokens", "map");
      for (const bad of ["", true]) {
        const ga = await m.getAll(bad as string).catch((e) => e);
        assert.instance(ga, TypeError, storage);
        assert.is(ga.message, "get_all only supports non-empty string keys");
        const da = await m.deleteAll(bad as string).catch((e) => e);
        assert.instance(da, TypeError, storage);
        assert.is(da.message, "delete_all only supports non-empty string keys");
      }
      assert.instance(await m.get(7 as unknown as string, "k").catch((e) => e), TypeError, storage);
    } finally {
      logs.restore();
    }
  }
});

test("store-opened fires on the host bus with Prosody's fields and may replace the store", async () => {
  const r = rt({ storage: "memory" });
  const seen: any[] = [];
  r.eventsFor("h.example").hook("store-opened", (e: any) => {
    seen.push({ host: e.host, store_name: e.store_name, store_type: e.store_type });
    if (e.store_name === "wrapped") {
      const inner = e.store;
      e.store = { ...inner, type: "keyval", get: async () => ({ wrapped: true }) };
    }
  });
  await r.storage.open("h.example", "plain", "map");
  const w = await r.storage.open("h.example", "wrapped");
  assert.equal(seen, [
    { host: "h.example", store_name: "plain", store_type: "map" },
    { host: "h.example", store_name: "wrapped", store_type: "keyval" },
  ]);
  assert.equal(await w.get("anyone"), { wrapped: true });
});

test("stores are per host: the same store name on two hosts holds different data", async () => {
  const r = createRuntime({ config: makeConfig({ storage: "memory" }, { "a.example": {}, "b.example": {} }), processType: "server" });
  const a = await r.storage.open("a.example", "s");
  const b = await r.storage.open("b.example", "s");
  await a.set("u", { v: "a" });
  assert.is(await b.get("u"), undefined);
});

test.run();
