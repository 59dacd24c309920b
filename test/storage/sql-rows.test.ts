/**
 * The exact rows the SQL driver writes (Prosody 0.12 mod_storage_sql layout), the schema, and that
 * the compacted file is a plain SQLite database others can read.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import initSqlJs from "sql.js";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PROSODY_SQLITE_DDL, createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import type { SqlDatabase } from "../../src/storage/drivers/sql.js";
import type { SqljsEngine } from "../../src/storage/drivers/sql-sqljs.js";
import { StorageError, type KeyvalStore, type MapStore } from "../../src/storage/types.js";
import { skip } from "../helpers/skip.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-rows-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;

async function fresh() {
  const dir = path.join(root, String(n++));
  const file = path.join(dir, "prosody.sqlite");
  const db = await openSqlDatabase(file);
  const p = createSqlProvider({ host: "example.com", db });
  return {
    dir,
    file,
    db,
    p,
    kv: (s: string) => p.open(s, "keyval") as KeyvalStore,
    map: (s: string) => p.open(s, "map") as MapStore,
  };
}

const rows = (db: SqlDatabase<SqljsEngine>, store: string) =>
  db.engine.sqlite
    .all(`SELECT "host","user","store","key","type","value" FROM "prosody" WHERE "store"=? ORDER BY "user","key"`, [store])
    .map((r) => [r.host, r.user, r.store, r.key, r.type, r.value]);

let sqlite3: string | undefined;
try {
  execFileSync("sqlite3", ["-version"], { stdio: "pipe" });
  sqlite3 = "sqlite3";
} catch {
  console.log("sqlite3 CLI not installed: the cross-checks with real SQLite inside tests are left out");
}

test("map set: type/value encoding of each kind of value (empty table → {})", async () => {
  const { db, map } = await fresh();
  const m = map("enc");
  await m.set(null, "str", "hello wörld");
  await m.set(null, "int", 10000);
  await m.set(null, "neg", -3);
  await m.set(null, "float", 1.5);
  await m.set(null, "tiny", 0.1);
  await m.set(null, "t", true);
  await m.set(null, "f", false);
  await m.set(null, "empty", {});
  await m.set(null, "emptylist", []);
  await m.set(null, "list", ["a", "b"]);
  await m.set(null, "nested", { groups: {}, roles: { "prosody:admin": true }, n: 3, l: [1, 2.5], s: "tab\tand ünïcode \"quotes\" \u0001/" });
  await m.set("alice", "str", "user row");
  assert.equal(rows(db, "enc"), [
    ["example.com", "", "enc", "empty", "json", "{}"],
    ["example.com", "", "enc", "emptylist", "json", "{}"],
    ["example.com", "", "enc", "f", "boolean", "false"],
    ["example.com", "", "enc", "float", "number", "1.5"],
    ["example.com", "", "enc", "int", "number", "10000"],
    ["example.com", "", "enc", "list", "json", '["a","b"]'],
    ["example.com", "", "enc", "neg", "number", "-3"],
    [
      "example.com",
      "",
      "enc",
      "nested",
      "json",
      '{"groups":{},"roles":{"prosody:admin":true},"n":3,"l":[1,2.5],"s":"tab\\tand ünïcode \\"quotes\\" \\u0001/"}',
    ],
    ["example.com", "", "enc", "str", "string", "hello wörld"],
    ["example.com", "", "enc", "t", "boolean", "true"],
    ["example.com", "", "enc", "tiny", "number", "0.1"],
    ["example.com", "alice", "enc", "str", "string", "user row"],
  ]);
  await db.close();
});

test("JSON: control characters as \\u00XX uppercase, short escapes, no null members", async () => {
  const { db, map } = await fresh();
  await map("j").set(null, "k", { c: "\u001f\u0000\b\f\n\r\t\\\"", gone: null as unknown as string, u: undefined as unknown as string });
  assert.equal(rows(db, "j")[0]![5], '{"c":"\\u001F\\u0000\\b\\f\\n\\r\\t\\\\\\""}');
  await db.close();
});

test("JSON: the fast path never leaks JSON.stringify's forms ([] or \\u in text, nested [], null members)", async () => {
  const { db, map } = await fresh();
  const m = map("f");
  await m.set(null, "a", { s: "a [] b", t: "\\u0041 literally", l: ["x", []], plain: "é/ok" });
  await m.set(null, "b", { s: "no specials", n: [1, { e: [] }] });
  await m.set(null, "c", { s: "only \u007f and ünï", n: -0, f: 0.1, big: 1e21 });
  await m.set(null, "d", { s: "x", gone: null as unknown as string, in: { also: null as unknown as string, u: undefined as unknown as string, k: 1 } });
  assert.equal(
    rows(db, "f").map((r) => r[5]),
    [
      '{"s":"a [] b","t":"\\\\u0041 literally","l":["x",{}],"plain":"é/ok"}',
      '{"s":"no specials","n":[1,{"e":{}}]}',
      '{"s":"only \u007f and ünï","n":0,"f":0.1,"big":1e+21}',
      '{"s":"x","in":{"k":1}}',
    ],
  );
  await db.close();
});

test("map set deletes then inserts; set(undefined) deletes; one row per key", async () => {
  const { db, map } = await fresh();
  const m = map("invite_token");
  await m.set(null, "tok", { a: 1 });
  await m.set(null, "tok", { a: 2 });
  assert.equal(rows(db, "invite_token"), [["example.com", "", "invite_token", "tok", "json", '{"a":2}']]);
  await m.setKeys(null, { tok: { a: 3 }, other: "x" });
  assert.equal(rows(db, "invite_token"), [
    ["example.com", "", "invite_token", "other", "string", "x"],
    ["example.com", "", "invite_token", "tok", "json", '{"a":3}'],
  ]);
  await m.set(null, "tok", undefined);
  assert.equal(rows(db, "invite_token"), [["example.com", "", "invite_token", "other", "string", "x"]]);
  await db.close();
});

test("keyval set: one row per string key, the \"\" key in a json row, null user as \"\"", async () => {
  const { db, kv } = await fresh();
  const s = kv("accounts");
  await s.set("alice", { password: "secret", iteration_count: 10000, ok: true, "": "odd", nested: { x: [] as string[] } });
  await s.set(null, { host: "wide" });
  assert.equal(rows(db, "accounts"), [
    ["example.com", "", "accounts", "host", "string", "wide"],
    ["example.com", "alice", "accounts", "", "json", '{"":"odd"}'],
    ["example.com", "alice", "accounts", "iteration_count", "number", "10000"],
    ["example.com", "alice", "accounts", "nested", "json", '{"x":{}}'],
    ["example.com", "alice", "accounts", "ok", "boolean", "true"],
    ["example.com", "alice", "accounts", "password", "string", "secret"],
  ]);
  // An empty table has no array/object distinction in Lua: Prosody writes {} and so do we.
  assert.equal(await s.get("alice"), { password: "secret", iteration_count: 10000, ok: true, "": "odd", nested: { x: {} } });
  assert.equal((await s.users()).sort(), ["", "alice"]);
  await s.set("alice", {});
  assert.equal(rows(db, "accounts"), [["example.com", "", "accounts", "host", "string", "wide"]]);
  await db.close();
});

test("reads rows written by Prosody (integral floats, __array/__hash, [] vs {})", async () => {
  const { db, kv, map } = await fresh();
  const ins = `INSERT INTO "prosody" ("host","user","store","key","type","value") VALUES (?,?,?,?,?,?)`;
  await db.engine.sqlite.execute([
    [ins, ["example.com", "bob", "p", "n", "number", "2.0"]],
    [ins, ["example.com", "bob", "p", "arr", "json", '{"__array":["a","b"]}']],
    [ins, ["example.com", "bob", "p", "mixed", "json", '{"__array":["a"],"__hash":[true,"t",5,"five"],"x":1}']],
    [ins, ["example.com", "bob", "p", "emptyarr", "json", "[]"]],
    [ins, ["example.com", "bob", "p", "", "json", '["seq1","seq2"]']],
    [ins, ["example.com", "bob", "p", "flag", "boolean", "true"]],
  ]);
  assert.is(await map("p").get("bob", "n"), 2);
  assert.equal(await map("p").get("bob", "arr"), ["a", "b"]);
  assert.equal(await map("p").get("bob", "mixed"), { x: 1, "1": "a", true: "t", "5": "five" });
  assert.equal(await map("p").get("bob", "emptyarr"), []);
  assert.equal(await kv("p").get("bob"), {
    n: 2,
    arr: ["a", "b"],
    mixed: { x: 1, "1": "a", true: "t", "5": "five" },
    emptyarr: [],
    flag: true,
    "1": "seq1",
    "2": "seq2",
  });
  await db.close();
});

test("bad rows → StorageError naming host, store and key", async () => {
  const { db, kv, map } = await fresh();
  const ins = `INSERT INTO "prosody" ("host","user","store","key","type","value") VALUES (?,?,?,?,?,?)`;
  await db.engine.sqlite.execute([
    [ins, ["example.com", "", "bad", "lua", "lua", "{}"]],
    [ins, ["example.com", "", "bad", "json", "json", "{not json"]],
    [ins, ["example.com", "", "bad", "num", "number", "abc"]],
  ]);
  for (const key of ["lua", "json", "num"]) {
    try {
      await map("bad").get(null, key);
      assert.unreachable(key);
    } catch (err) {
      assert.instance(err, StorageError);
      const msg = (err as Error).message;
      assert.ok(msg.includes('"example.com"') && msg.includes('"bad"') && msg.includes(`"${key}"`), msg);
    }
  }
  try {
    await kv("bad").get(null);
    assert.unreachable("keyval get");
  } catch (err) {
    assert.instance(err, StorageError);
  }
  await db.close();
});

test("the empty-string map key lives inside the \"\" row", async () => {
  const { db, map, kv } = await fresh();
  const m = map("e");
  await kv("e").set("u", { a: 1, "": "x" });
  assert.is(await m.get("u", ""), "x");
  await m.set("u", "", "y");
  assert.is(await m.get("u", ""), "y");
  assert.equal(await kv("e").get("u"), { a: 1, "": "y" });
  assert.equal((await m.getAll("")).get("u"), "y");
  await m.deleteAll("");
  assert.is(await m.get("u", ""), undefined);
  assert.equal(await kv("e").get("u"), { a: 1 });
  assert.equal(rows(db, "e"), [["example.com", "u", "e", "a", "number", "1"]]);
  await db.close();
});

test("hosts are separate; purge only touches one host's user", async () => {
  const { db, file } = await fresh();
  const a = createSqlProvider({ host: "a.example", db });
  const b = createSqlProvider({ host: "b.example", db });
  await (a.open("s", "keyval") as KeyvalStore).set("alice", { v: "a" });
  await (b.open("s", "keyval") as KeyvalStore).set("alice", { v: "b" });
  assert.equal(await (a.open("s", "keyval") as KeyvalStore).get("alice"), { v: "a" });
  await a.purge!("alice");
  assert.is(await (a.open("s", "keyval") as KeyvalStore).get("alice"), undefined);
  assert.equal(await (b.open("s", "keyval") as KeyvalStore).get("alice"), { v: "b" });
  await db.close();
});

test("schema: Prosody's exact DDL; compacted file is a plain SQLite DB with the rows", async () => {
  const { db, file, dir, map } = await fresh();
  const expected = PROSODY_SQLITE_DDL.map((s) => s.replace(/ IF NOT EXISTS/, "").replace(/;$/, ""));
  const master = () => db.engine.sqlite.all(`SELECT "sql" FROM "sqlite_master" WHERE "sql" IS NOT NULL AND "name" NOT LIKE 'sqlite_%' ORDER BY rowid`).map((r) => r.sql);
  assert.equal(master(), expected);
  await map("invite_token").set(null, "tok", { token: "tok", created_at: 1795932662, additional_data: { groups: {} } });
  await map("invite_token").set("alice", "k", 1.25);
  await db.close({ fold: true });
  // Besides the database, only our (empty) lock directory, which stays.
  assert.equal(fs.readdirSync(dir).sort(), [".prosody-ts-locks", "prosody.sqlite"], "only the SQLite file remains after a compacting close");
  assert.equal(fs.readdirSync(path.join(dir, ".prosody-ts-locks")), [], "no lock entry is left");
  const mode = fs.statSync(file).mode & 0o777;
  assert.is(mode & 0o027, 0, `file mode ${mode.toString(8)} is at most 0750`);

  const SQL = await initSqlJs();
  const other = new SQL.Database(fs.readFileSync(file));
  const res = other.exec(`SELECT "host","user","store","key","type","value" FROM "prosody" ORDER BY "user"`);
  assert.equal(res[0]!.values, [
    ["example.com", "", "invite_token", "tok", "json", '{"token":"tok","created_at":1795932662,"additional_data":{"groups":{}}}'],
    ["example.com", "alice", "invite_token", "k", "number", "1.25"],
  ]);
  other.close();

  if (sqlite3) {
    const out = execFileSync(sqlite3, [file, `PRAGMA integrity_check; SELECT "user","key","value" FROM "prosody" ORDER BY "user";`], { encoding: "utf8" });
    assert.is(out, 'ok\n|tok|{"token":"tok","created_at":1795932662,"additional_data":{"groups":{}}}\nalice|k|1.25\n');
    // The same DDL run by real SQLite gives the same schema.
    const ref = path.join(dir, "ref.sqlite");
    execFileSync(sqlite3, [ref, PROSODY_SQLITE_DDL.join("\n")]);
    const q = `SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name;`;
    assert.is(execFileSync(sqlite3, [file, q], { encoding: "utf8" }), execFileSync(sqlite3, [ref, q], { encoding: "utf8" }));
  }
});

test("opens a database created by real SQLite (as Prosody leaves it) and keeps it readable", async (ctx) => {
  if (!sqlite3) return skip(ctx, "sqlite3 is not installed (apt-get install sqlite3)");
  const dir = path.join(root, String(n++));
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "prosody.sqlite");
  execFileSync(sqlite3, [
    file,
    PROSODY_SQLITE_DDL.join("\n") +
      `INSERT INTO "prosody" VALUES ('example.com','','invite_token','fromprosody','json','{"token":"fromprosody","created_at":1795932662,"additional_data":{"groups":{}}}');`,
  ]);
  const db = await openSqlDatabase(file);
  const m = createSqlProvider({ host: "example.com", db }).open("invite_token", "map") as MapStore;
  assert.equal(await m.get(null, "fromprosody"), { token: "fromprosody", created_at: 1795932662, additional_data: { groups: {} } });
  await m.set(null, "fromus", { token: "fromus" });
  await db.close({ fold: true });
  const out = execFileSync(sqlite3, [file, `PRAGMA integrity_check; SELECT "key" FROM "prosody" ORDER BY "key";`], { encoding: "utf8" });
  assert.is(out, "ok\nfromprosody\nfromus\n");
});

test.run();
