/**
 * Keyval records that are Lua sequences (top-level arrays), checked against real Prosody 0.12
 * (Debian's package: its Lua sources under /usr/lib/prosody, run by lua5.4, and its own
 * prosody-migrator, which moves records with the real mod_storage_sql and util.datamanager):
 * - internal: our `.dat` of a sequence is what util.serialization writes, byte for byte where the
 *   order is fixed; util.datamanager loads it as a sequence (`#list == n`); a sequence it wrote
 *   reads here as an array;
 * - sql: a sequence is the one row key "" / type json holding the JSON array, as real
 *   mod_storage_sql writes it; real mod_storage_sql reads ours as a sequence, and ours reads its;
 * - a map write that would add a key to a sequence: refused by memory, internal and the shim; SQL
 *   adds the row, as Prosody's SQL does.
 * The cross-checks report themselves skipped when lua5.4, Prosody or root are missing.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test as uvuTest } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import { createMemoryProvider } from "../../src/storage/drivers/memory.js";
import { createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import { mapOverKeyval } from "../../src/storage/map-shim.js";
import { StorageError, type KeyvalStore, type MapStore, type StorageProvider, type StoreValue } from "../../src/storage/types.js";
import { skipIf } from "../helpers/skip.js";

const PROSODY = "/usr/lib/prosody";
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const luaMissing = !(fs.existsSync(path.join(PROSODY, "util/serialization.lua")) && has("lua5.4")) && "lua5.4 or Prosody's Lua sources (/usr/lib/prosody) not found (install the prosody and lua5.4 packages)";
const migratorMissing =
  luaMissing ||
  (process.getuid?.() !== 0 && "real prosody-migrator switches to the prosody user: needs root") ||
  (!has("prosody-migrator") && "prosody-migrator not found (install the prosody package)") ||
  (!has("sqlite3") && "sqlite3 not found (apt-get install sqlite3)") ||
  (spawnSync("id", ["-u", "prosody"]).status !== 0 && "no prosody user");
const withLua = skipIf(uvuTest, luaMissing);
const withMigrator = skipIf(uvuTest, migratorMissing);
const test = uvuTest;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-seq-"));
fs.chmodSync(tmp, 0o755); // real prosody-migrator runs as the prosody user
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const dir = path.join(tmp, String(n++));
  fs.mkdirSync(dir, { recursive: true });
  return dir;
};

/** Runs a Lua 5.4 script with Prosody's tree on the path; its stdout. */
function lua(script: string): string {
  const file = path.join(tmp, `script-${n++}.lua`);
  fs.writeFileSync(file, `package.path = "${PROSODY}/?.lua;" .. package.path\npackage.cpath = "${PROSODY}/?.so;" .. package.cpath\n${script}`);
  const r = spawnSync("lua5.4", [file], { encoding: "latin1" });
  if (r.status !== 0) throw new Error(`lua5.4 failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Real prosody-migrator from `input` to `output` (config entries), as the prosody user. */
function realMigrate(dir: string, stores: string, input: string, output: string): void {
  fs.writeFileSync(path.join(dir, "migrator.cfg.lua"), `input { ${input}; hosts = { ["example.com"] = { ${stores} } } }\noutput { ${output} }\n`);
  spawnSync("chown", ["-R", "prosody:prosody", dir]);
  fs.chmodSync(dir, 0o755);
  const r = spawnSync("prosody-migrator", ["--config", path.join(dir, "migrator.cfg.lua"), "input", "output"], { encoding: "utf8", timeout: 60_000 });
  assert.is(r.status, 0, r.stdout + r.stderr);
}

const sqliteRows = (file: string, store: string) =>
  spawnSync("sqlite3", ["-separator", "|", file, `SELECT "host","user","store","key","type","value" FROM "prosody" WHERE "store"='${store}' ORDER BY "user","key"`], { encoding: "utf8" })
    .stdout.trim()
    .split("\n")
    .filter(Boolean);

/** A list shaped like mod_invites_bootstrap's (tables of three keys: Lua writes them in hash order). */
const BOOTSTRAP_LIST: StoreValue[] = [
  { index: 1, timestamp: 1700000000, result: "https://example.com/invite/abc/" },
  { index: 2, timestamp: 1700000100.5, result: "xmpp:example.com?register;preauth=def" },
  { index: 5, timestamp: 1700000200, result: "https://example.com/invite/ghi/" },
];
const BOOTSTRAP_LUA = `{ { index = 1, timestamp = 1700000000, result = "https://example.com/invite/abc/" },
  { index = 2, timestamp = 1700000100.5, result = "xmpp:example.com?register;preauth=def" },
  { index = 5, timestamp = 1700000200, result = "https://example.com/invite/ghi/" } }`;
/** What Snikket's module reads: the length and the last entry. */
const SNIKKET_READ = `io.write(#list, " ", list[#list].index, " ", list[#list].result)`;
const SNIKKET_SEES = "3 5 https://example.com/invite/ghi/";

const sortedLines = (s: string) => s.split("\n").sort().join("\n");

withLua("internal: a sequence is written as util.serialization writes it; util.datamanager loads it as a sequence", async () => {
  const data = freshDir();
  const p = createInternalProvider({ dataPath: data, host: "example.com" });
  const kv = p.open("invites_bootstrap", "keyval") as KeyvalStore;
  // Fixed order (no table with two keys): byte for byte.
  const fixed: StoreValue[] = ["a", 1, 2.5, true, ["nested", ["deeper"]], { one: "key" }, {}, "ünï\n\"'"];
  await kv.set("fixed", fixed);
  const theirs = lua(`
    local ser = require "util.serialization".serialize
    io.write("return " .. ser({ "a", 1, 2.5, true, { "nested", { "deeper" } }, { one = "key" }, {}, "ünï\\n\\"'" }) .. ";\\n")
  `);
  assert.is(fs.readFileSync(p.pathOf("invites_bootstrap", "fixed"), "latin1"), theirs);
  // The bootstrap list: the same lines (Lua orders each entry's keys by hash).
  await kv.set(null, BOOTSTRAP_LIST);
  const file = p.pathOf("invites_bootstrap", null);
  const theirList = lua(`io.write("return " .. require "util.serialization".serialize(${BOOTSTRAP_LUA}) .. ";\\n")`);
  assert.is(sortedLines(fs.readFileSync(file, "latin1")), sortedLines(theirList));
  const loaded = lua(`
    local dm = require "util.datamanager"
    dm.set_data_path("${data}")
    local list = assert(dm.load(nil, "example.com", "invites_bootstrap"))
    ${SNIKKET_READ}
    local f = assert(dm.load("fixed", "example.com", "invites_bootstrap"))
    io.write(" ", #f, " ", f[5][2][1])
  `);
  assert.is(loaded, `${SNIKKET_SEES} 8 deeper`);
});

withLua("internal: a sequence util.datamanager wrote reads as an array; a mixed table as a record", async () => {
  const data = freshDir();
  lua(`
    local dm = require "util.datamanager"
    dm.set_data_path("${data}")
    assert(dm.store(nil, "example.com", "invites_bootstrap", ${BOOTSTRAP_LUA}))
    assert(dm.store("mixed", "example.com", "invites_bootstrap", { "x", "y", name = "z" }))
  `);
  const p = createInternalProvider({ dataPath: data, host: "example.com" });
  const kv = p.open("invites_bootstrap", "keyval") as KeyvalStore;
  assert.equal(await kv.get(null), BOOTSTRAP_LIST);
  assert.ok(Array.isArray(await kv.get(null)));
  assert.equal(await kv.get("mixed"), { "1": "x", "2": "y", name: "z" });
});

withMigrator("sql: a sequence is one row (key \"\", json, the JSON array); real mod_storage_sql reads it as a sequence", async () => {
  const dir = freshDir();
  const file = path.join(dir, "prosody.sqlite");
  const db = await openSqlDatabase(file);
  try {
    const kv = createSqlProvider({ host: "example.com", db }).open("invites_bootstrap", "keyval") as KeyvalStore;
    await kv.set(null, BOOTSTRAP_LIST);
    await kv.set("alice", ["only"]);
  } finally {
    await db.close({ fold: true });
  }
  const ours = sqliteRows(file, "invites_bootstrap");
  assert.equal(
    ours.map((r) => r.split("|").slice(0, 5).join("|")),
    ["example.com||invites_bootstrap||json", "example.com|alice|invites_bootstrap||json"],
  );
  assert.equal(JSON.parse(ours[0]!.split("|").slice(5).join("|")), BOOTSTRAP_LIST);
  assert.is(ours[1]!.split("|").slice(5).join("|"), '["only"]');
  // Real prosody-migrator: mod_storage_sql's keyval get of our rows, stored by util.datamanager.
  fs.mkdirSync(path.join(dir, "out"));
  realMigrate(dir, `"invites_bootstrap"`, `type = "sql"; driver = "SQLite3"; database = "${file}"`, `type = "internal"; path = "${dir}/out"`);
  const seen = lua(`
    local dm = require "util.datamanager"
    dm.set_data_path("${dir}/out")
    local list = assert(dm.load(nil, "example.com", "invites_bootstrap"))
    ${SNIKKET_READ}
    local a = assert(dm.load("alice", "example.com", "invites_bootstrap"))
    io.write(" ", #a, " ", a[1])
  `);
  assert.is(seen, `${SNIKKET_SEES} 1 only`);
});

withMigrator("sql: rows real mod_storage_sql wrote for a sequence (and a mixed table) are ours, and read back", async () => {
  const dir = freshDir();
  lua(`
    local dm = require "util.datamanager"
    dm.set_data_path("${dir}/in")
    assert(dm.store(nil, "example.com", "invites_bootstrap", ${BOOTSTRAP_LUA}))
    assert(dm.store("alice", "example.com", "invites_bootstrap", { "only" }))
    assert(dm.store("mixed", "example.com", "invites_bootstrap", { "x", "y", name = "z" }))
  `);
  const file = path.join(dir, "theirs.sqlite");
  realMigrate(dir, `"invites_bootstrap"`, `type = "internal"; path = "${dir}/in"`, `type = "sql"; driver = "SQLite3"; database = "${file}"`);
  const theirs = sqliteRows(file, "invites_bootstrap");
  assert.equal(
    theirs.map((r) => r.split("|").slice(0, 5).join("|")),
    ["example.com||invites_bootstrap||json", "example.com|alice|invites_bootstrap||json", "example.com|mixed|invites_bootstrap||json", "example.com|mixed|invites_bootstrap|name|string"],
  );
  assert.is(theirs[1]!.split("|").slice(5).join("|"), '["only"]');
  assert.is(theirs[2]!.split("|").slice(5).join("|"), '["x","y"]');
  const db = await openSqlDatabase(file);
  try {
    const kv = createSqlProvider({ host: "example.com", db }).open("invites_bootstrap", "keyval") as KeyvalStore;
    assert.equal(await kv.get(null), BOOTSTRAP_LIST);
    assert.equal(await kv.get("alice"), ["only"]);
    assert.equal(await kv.get("mixed"), { "1": "x", "2": "y", name: "z" }, "a mixed table: its positions as string keys");
  } finally {
    await db.close({ fold: false });
  }
});

/** Each driver's map view over a user whose record is a sequence. */
async function mapOverSequence(open: (type: "keyval" | "map") => KeyvalStore | MapStore): Promise<{ err: unknown; after: unknown }> {
  const kv = open("keyval") as KeyvalStore;
  const m = open("map") as MapStore;
  await kv.set("u", ["a", "b"]);
  const err = await m.set("u", "name", "c").then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, after: await kv.get("u") };
}

test("a map write adding a key to a sequence: refused by memory, internal and the shim, the sequence kept", async () => {
  const memory = createMemoryProvider();
  const internal = createInternalProvider({ dataPath: freshDir(), host: "example.com" });
  const opened = (p: StorageProvider) => (type: "keyval" | "map") => p.open("s", type) as KeyvalStore | MapStore;
  const shim = (p: StorageProvider) => (type: "keyval" | "map") => (type === "keyval" ? (p.open("t", "keyval") as KeyvalStore) : mapOverKeyval(p.open("t", "keyval") as KeyvalStore));
  for (const [label, open] of [
    ["memory", opened(memory)],
    ["internal", opened(internal)],
    ["shim over memory", shim(memory)],
  ] as const) {
    const { err, after } = await mapOverSequence(open);
    assert.instance(err, StorageError, label);
    assert.match((err as Error).message, /the record is a sequence .* the map key "name" cannot be added/, label);
    assert.equal(after, ["a", "b"], label);
  }
});

test("a map write adding a key to a sequence with SQL: a row beside the positions, as Prosody's SQL (a mixed table)", async () => {
  const db = await openSqlDatabase(path.join(freshDir(), "prosody.sqlite"));
  try {
    const p = createSqlProvider({ host: "example.com", db });
    const { err, after } = await mapOverSequence((type) => p.open("s", type) as KeyvalStore | MapStore);
    assert.is(err, undefined);
    assert.equal(after, { "1": "a", "2": "b", name: "c" });
    // The "" key lives in the row that holds the positions: changing it would turn them into string keys.
    const m = p.open("s", "map") as MapStore;
    const kv = p.open("s", "keyval") as KeyvalStore;
    await kv.set("v", ["a"]);
    const e = await m.set("v", "", "x").then(
      () => undefined,
      (x: unknown) => x,
    );
    assert.instance(e, StorageError);
    assert.equal(await kv.get("v"), ["a"]);
    await m.set("v", "", undefined);
    await m.deleteAll("");
    assert.equal(await kv.get("v"), ["a"]);
  } finally {
    await db.close({ fold: false });
  }
});

uvuTest.run();
