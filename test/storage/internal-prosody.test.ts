/**
 * Cross-check of the internal storage format with real Prosody (Debian's prosody package, run by
 * lua5.4 with package.path set to /usr/lib/prosody):
 * - util.serialization's default output (what util.datamanager writes) equals ours byte for byte
 *   wherever the key order is fixed, and line for line (sorted) elsewhere;
 * - files written by Prosody's util.datamanager are read by our driver (same paths, same values);
 * - files written by our driver are loaded by util.datamanager (same values, same user lists).
 * Its tests report themselves skipped when lua5.4 or Prosody's Lua sources are not installed.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test as uvuTest } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import { readLuaData } from "../../src/storage/lua/read.js";
import { serialize } from "../../src/storage/lua/serialize.js";
import type { KeyvalStore, MapStore, StoreRecord } from "../../src/storage/types.js";
import { makeInviteTable, prng } from "../fixtures/internal/gen.js";
import { skipIf } from "../helpers/skip.js";

const PROSODY = "/usr/lib/prosody";
const LUA = spawnSync("sh", ["-c", "command -v lua5.4"], { encoding: "utf8" }).stdout.trim();
const available = fs.existsSync(path.join(PROSODY, "util/serialization.lua")) && LUA !== "";
const test = skipIf(uvuTest, !available && "lua5.4 or Prosody's Lua sources (/usr/lib/prosody) not found (install the prosody and lua5.4 packages)");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-internal-lua-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs a Lua 5.4 script with Prosody's tree on the path; returns stdout (throws on failure). */
function lua(script: string): Buffer {
  const file = path.join(tmp, `script-${process.hrtime.bigint()}.lua`);
  fs.writeFileSync(file, `package.path = "${PROSODY}/?.lua;" .. package.path\npackage.cpath = "${PROSODY}/?.so;" .. package.cpath\n${script}`);
  const r = spawnSync(LUA, [file], { maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`lua5.4 failed (${r.status}): ${r.stderr.toString()}`);
  return r.stdout;
}

const sortedLines = (s: string) => s.split("\n").sort().join("\n");

/** Values whose serialisation has a fixed order (no object with two or more keys). */
function fixedOrderCases(): unknown[] {
  const r = prng(7);
  const doubles = Array.from({ length: 400 }, (_, i) => {
    const x = (r() - 0.5) * 10 ** Math.floor(r() * 60 - 30);
    return i % 3 === 0 ? x : i % 3 === 1 ? 1 / (i + 0.5) : x * 2 ** Math.floor(r() * 200 - 100);
  });
  let bytes = "";
  for (let b = 0; b < 128; b++) bytes += String.fromCharCode(b);
  let deep: unknown = "leaf";
  for (let i = 0; i < 126; i++) deep = [deep];
  return [
    "plain",
    "",
    bytes,
    "ünïcödé ✓ 𝄞 日本 \u00a0\ufeff",
    `a long string with "quotes", 'apostrophes', \\backslashes\\ and ]] [[ brackets`,
    0,
    -1,
    10000,
    2 ** 53 - 1,
    -(2 ** 62),
    2 ** 62,
    0.1,
    1.5,
    -2.5,
    1e300,
    5e-324,
    1.7976931348623157e308,
    2 ** 63,
    2 ** 64,
    1e21,
    1000000000000000.125,
    0.0001,
    1e-5,
    Infinity,
    -Infinity,
    true,
    false,
    {},
    [],
    ["a", "b", ["c", { only: "one key" }], {}, 1, 2.25, true],
    { nested: { deeper: { list: [1, 2, 3] } } },
    doubles,
    deep,
  ];
}

test("util.serialization: byte-identical output for fixed-order values", () => {
  const cases = fixedOrderCases();
  const ours = cases.map((v) => serialize(v));
  // Give Lua our literal, let Prosody's serializer write it again.
  cases.forEach((_, i) => fs.writeFileSync(path.join(tmp, `case${i}.lua`), `return ${ours[i]}`));
  const out = lua(`
    local ser = require "util.serialization".serialize
    for i = 0, ${cases.length - 1} do
      local f = assert(loadfile("${tmp}/case" .. i .. ".lua", "t", {}))
      io.write(ser((f())), "\\0")
    end`)
    .toString("latin1")
    .split("\0")
    .slice(0, -1);
  assert.is(out.length, cases.length);
  cases.forEach((v, i) => assert.is(ours[i], out[i], `case ${i}: ${JSON.stringify(v)?.slice(0, 80)}`));
});

test("util.serialization: records with many keys equal line for line (order aside)", () => {
  const r = prng(11);
  const records: StoreRecord[] = [
    makeInviteTable(50, 3),
    {
      salt: "80ff32d1-82ab-4af9-a9be-ce0deea8b638",
      iteration_count: 10000,
      f: 0.3,
      neg: -1e-7,
      t: true,
      s: "é\n\t\"'",
      e: {},
      list: [1, "2", [3]],
    },
  ];
  for (let i = 0; i < 20; i++) {
    const rec: StoreRecord = {};
    for (let k = 0; k < 30; k++) rec[`k${k}_${Math.floor(r() * 1e6)}`] = r() < 0.5 ? r() * 1e9 : `v${r()}`;
    records.push(rec);
  }
  records.forEach((rec, i) => fs.writeFileSync(path.join(tmp, `rec${i}.lua`), `return ${serialize(rec)}`));
  const out = lua(`
    local ser = require "util.serialization".serialize
    for i = 0, ${records.length - 1} do
      local f = assert(loadfile("${tmp}/rec" .. i .. ".lua", "t", {}))
      io.write(ser((f())), "\\0")
    end`)
    .toString("latin1")
    .split("\0")
    .slice(0, -1);
  records.forEach((rec, i) => {
    const theirs = out[i]!;
    assert.is(sortedLines(serialize(rec)), sortedLines(theirs), `record ${i}`);
    assert.equal(readLuaData(Buffer.from(theirs, "latin1"), `prosody-${i}`), rec);
  });
});

test("files written by Prosody's util.datamanager are read by our driver", async () => {
  const data = path.join(tmp, "from-prosody");
  fs.mkdirSync(data);
  lua(`
    local dm = require "util.datamanager"
    dm.set_data_path("${data}")
    assert(dm.store("alice", "example.com", "accounts", { salt = "s", iteration_count = 10000, stored_key = "k" }))
    assert(dm.store("jü.liet", "example.com", "accounts", { ["x"] = 1.5, ["y"] = "日本" }))
    assert(dm.store("a_b-c~d", "example.com", "my-store_x", { list = { "a", "b", { c = true } }, e = {} }))
    assert(dm.store(nil, "example.com", "invite_token", {
      tok1 = { token = "tok1", created_at = 1795932914, allow_registration = true, additional_data = { groups = {} } },
      tok2 = { token = "tok2", f = 0.1, big = 9007199254740993, inf = 1/0 },
    }))
    assert(dm.store("bob", "example.com", "accounts", { a = 1 }))
    assert(dm.store("bob", "example.com", "accounts", {})) -- empty: deleted
    assert(dm.store("g", nil, "global_store", { g = 1 }))
  `);
  const p = createInternalProvider({ dataPath: data, host: "example.com" });
  const kv = (s: string) => p.open(s, "keyval") as KeyvalStore;
  assert.equal(await kv("accounts").get("alice"), { salt: "s", iteration_count: 10000, stored_key: "k" });
  assert.equal(await kv("accounts").get("jü.liet"), { x: 1.5, y: "日本" });
  assert.equal(await kv("my-store_x").get("a_b-c~d"), { list: ["a", "b", { c: true }], e: {} });
  assert.is(await kv("accounts").get("bob"), undefined);
  assert.equal((await kv("accounts").users()).sort(), ["alice", "jü.liet"]);
  const m = p.open("invite_token", "map") as MapStore;
  assert.equal(await m.get(null, "tok1"), { token: "tok1", created_at: 1795932914, allow_registration: true, additional_data: { groups: {} } });
  assert.equal(await m.get(null, "tok2"), { token: "tok2", f: 0.1, big: 9007199254740992, inf: Infinity });
  const global = createInternalProvider({ dataPath: data, host: null });
  assert.equal(await (global.open("global_store", "keyval") as KeyvalStore).get("g"), { g: 1 });
});

test("files written by our driver are loaded by Prosody's util.datamanager", async () => {
  const data = path.join(tmp, "to-prosody");
  fs.mkdirSync(data);
  const p = createInternalProvider({ dataPath: data, host: "example.com" });
  const kv = (s: string) => p.open(s, "keyval") as KeyvalStore;
  const m = p.open("invite_token", "map") as MapStore;
  const records: [string, string | null, StoreRecord][] = [
    ["accounts", "alice", { salt: "80ff32d1", iteration_count: 10000, f: 0.1, neg: -2.5e-7, t: true }],
    ["accounts", "jü.liet", { s: "ünï\n\"'\\\0\x7f 𝄞", list: ["a", ["b"], {}], o: { deep: { deeper: [1, 2] } } }],
    ["my-store_x", "a_b-c~d", { big: 2 ** 62, huge: 1e300, tiny: 5e-324, e: {} }],
    ["roles", null, { "prosody:admin": true }],
  ];
  for (const [store, user, rec] of records) await kv(store).set(user, rec);
  const invites = makeInviteTable(20, 5);
  for (const [tok, inv] of Object.entries(invites)) await m.set(null, tok, inv);
  await m.set(null, Object.keys(invites)[0]!, undefined);
  delete invites[Object.keys(invites)[0]!];

  const loads = [...records.map(([s, u]) => [s, u] as const), ["invite_token", null] as const];
  const script = loads
    .map(([s, u]) => `io.write(ser(assert(dm.load(${u === null ? "nil" : JSON.stringify(u)}, "example.com", ${JSON.stringify(s)}))), "\\0")`)
    .join("\n");
  const out = lua(`
    local dm = require "util.datamanager"
    local ser = require "util.serialization".serialize
    dm.set_data_path("${data}")
    ${script}
    local users = {}
    for u in dm.users("example.com", "accounts") do users[#users + 1] = u end
    table.sort(users)
    io.write(table.concat(users, ","), "\\0")
  `)
    .toString("latin1")
    .split("\0");
  records.forEach(([store, user, rec], i) => {
    assert.equal(readLuaData(Buffer.from(out[i]!, "latin1"), "prosody"), rec, `${store}/${user}`);
    const ours = fs.readFileSync(p.pathOf(store, user), "latin1");
    assert.is(sortedLines(`return ${out[i]};\n`), sortedLines(ours), `${store}/${user}: same lines`);
  });
  assert.equal(readLuaData(Buffer.from(out[records.length]!, "latin1"), "prosody"), invites);
  assert.is(Buffer.from(out[records.length + 1]!, "latin1").toString("utf8"), "alice,jü.liet");
});

test.run();
