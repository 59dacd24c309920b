/**
 * storage = "internal" (src/storage/drivers/internal.ts + src/storage/lua/*): the shared conformance
 * suite, then Prosody's exact file format (golden dumps), paths, permissions, the reader's Lua syntax
 * coverage, hostile files, and visibility of outside changes.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider, type InternalProvider } from "../../src/storage/drivers/internal.js";
import { decode, encodeNode, encodeStore } from "../../src/storage/lua/encode-path.js";
import { readLuaData, readLuaString } from "../../src/storage/lua/read.js";
import { formatNumber, serialize, serializeFile } from "../../src/storage/lua/serialize.js";
import { NameTooLongError, StorageError, type KeyvalStore, type MapStore } from "../../src/storage/types.js";
import { makeInviteTable } from "../fixtures/internal/gen.js";
import { goldenFile } from "../helpers/golden.js";
import { storageConformance } from "./conformance.js";
import { skip } from "../helpers/skip.js";
import { recordOf } from "../helpers/records.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-internal-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;
const newDir = () => {
  const d = path.join(root, String(n++));
  fs.mkdirSync(d);
  return d;
};

storageConformance("internal", async () => {
  const dir = newDir();
  return {
    provider: createInternalProvider({ dataPath: dir, host: "example.com" }),
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}).run();

// ------------------------------------------------------------------------------------------------

interface Ctx {
  dir: string;
  p: InternalProvider;
}
const test = suite<Ctx>("internal driver", {} as Ctx);
test.before.each((ctx) => {
  ctx.dir = newDir();
  ctx.p = createInternalProvider({ dataPath: ctx.dir, host: "example.com" });
});

const kv = (p: InternalProvider, store: string) => p.open(store, "keyval") as KeyvalStore;
const map = (p: InternalProvider, store: string) => p.open(store, "map") as MapStore;

async function rejects(promise: Promise<unknown>, ...needles: string[]): Promise<StorageError> {
  try {
    await promise;
  } catch (err) {
    assert.instance(err, StorageError, `expected a StorageError, got ${String(err)}`);
    for (const s of needles) assert.ok((err as Error).message.includes(s), `"${(err as Error).message}" should mention ${s}`);
    return err as StorageError;
  }
  return assert.unreachable("expected a rejection with a StorageError") as never;
}

const GOLDEN_FILES = ["20-storage-internal-sequence.txt", "11-cli-internal-storage-after.txt", "42-storage-internal-after-http.txt"];

/** Every `--- ./<path> (<n> bytes, mode …)` file in a golden storage dump. */
function goldenDats(name: string): { path: string; bytes: Buffer; mode: string }[] {
  const buf = goldenFile(name);
  if (!buf) return [];
  const out: { path: string; bytes: Buffer; mode: string }[] = [];
  const re = /^--- \.\/(\S+) \((\d+) bytes, mode (\d+)[^)]*\)\n/gm;
  const text = buf.toString("latin1"); // byte offsets = string offsets
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const start = m.index + m[0].length;
    out.push({ path: m[1]!, bytes: buf.subarray(start, start + Number(m[2])), mode: m[3]! });
  }
  return out;
}

// The three records named in the task, built in the golden file's key order.
const API_KEY = {
  ST9M1Zp0bxsz: {
    allowed_methods: { GET: true, POST: true },
    name: "My test key",
    token: "86lmgfhWomtcrpcmLdQVQhoeLmOBXI6ge9Tm",
    created_at: 1795932914,
    id: "ST9M1Zp0bxsz",
  },
};
const INVITE = {
  HAjssEG5yUedAb369F4zRcJQ: {
    type: "register",
    expires: 1796537714,
    created_at: 1795932914,
    landing_page: "http://example.com:15280/invites_page?HAjssEG5yUedAb369F4zRcJQ",
    token: "HAjssEG5yUedAb369F4zRcJQ",
    allow_registration: true,
    jid: "example.com",
    uri: "xmpp:example.com?register;preauth=HAjssEG5yUedAb369F4zRcJQ",
    additional_data: { source: "api/token/ST9M1Zp0bxsz" },
  },
};
const ACCOUNT = {
  salt: "80ff32d1-82ab-4af9-a9be-ce0deea8b638",
  stored_key: "a2745dd7f05cfc4d479202e77ad33fa94a1b2ebd",
  iteration_count: 10000,
  server_key: "a7612186ddb2366f77ff295390db6963d4fe7156",
};

test("golden: API key, invite and account records serialise to Prosody's exact bytes", async (ctx) => {
  const { dir, p } = ctx;
  const seq = goldenDats("20-storage-internal-sequence.txt");
  if (!seq.length) return skip(ctx, "golden dumps not found (../shared/spec/golden)");
  const find = (suffix: string) => seq.find((f) => f.path.endsWith(suffix))!.bytes.toString("latin1");
  assert.is(serializeFile(API_KEY), find("invite_api_keys.dat"));
  assert.is(serializeFile(INVITE), seq.find((f) => f.path.endsWith("invite_token.dat") && f.bytes.length === 470)!.bytes.toString("latin1"));
  assert.is(serializeFile(ACCOUNT), find("accounts/alice.dat"));

  // Through the driver: same bytes at the same relative paths, mode 0640.
  await kv(p, "accounts").set("alice", ACCOUNT);
  await kv(p, "invite_api_keys").set(null, API_KEY);
  await map(p, "invite_token").set(null, "HAjssEG5yUedAb369F4zRcJQ", INVITE.HAjssEG5yUedAb369F4zRcJQ);
  for (const [rel, want] of [
    ["example%2ecom/accounts/alice.dat", find("accounts/alice.dat")],
    ["example%2ecom/invite_api_keys.dat", find("invite_api_keys.dat")],
    ["example%2ecom/invite_token.dat", serializeFile(INVITE)],
  ] as const) {
    const file = path.join(dir, rel);
    assert.is(fs.readFileSync(file, "latin1"), want, rel);
    assert.is(fs.statSync(file).mode & 0o777, 0o640, rel);
  }
});

test("golden: every dumped .dat file reads, and re-serialises to the same bytes (order kept)", async (ctx) => {
  const { dir } = ctx;
  let count = 0;
  for (const g of GOLDEN_FILES) {
    for (const f of goldenDats(g)) {
      const v = readLuaData(f.bytes, f.path);
      assert.type(v, "object");
      assert.is(serializeFile(v), f.bytes.toString("latin1"), `${g}: ${f.path}`);
      // …and the driver reads it at that path.
      const file = path.join(dir, String(count), f.path);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, f.bytes);
      const parts = f.path.split("/"); // <host>/<store>.dat or <host>/<store>/<user>.dat
      const p = createInternalProvider({ dataPath: path.join(dir, String(count)), host: decode(parts[0]!) });
      const got =
        parts.length === 2
          ? await kv(p, decode(parts[1]!.slice(0, -4))).get(null)
          : await kv(p, decode(parts[1]!)).get(decode(parts[2]!.slice(0, -4)));
      assert.equal(got, v);
      count++;
    }
  }
  if (!count) return skip(ctx, "golden dumps not found (../shared/spec/golden)");
  assert.ok(count >= 10, `only ${count} golden files`);
});

test("serialize: format details (§2.4)", () => {
  assert.is(serialize({}), "{}");
  assert.is(serialize([]), "{}");
  assert.is(
    serializeFile({ token: "abc", nested: { y: true }, list: ["a", "b"] }),
    'return {\n\t["token"] = "abc";\n\t["nested"] = {\n\t\t["y"] = true;\n\t};\n\t["list"] = {\n\t\t"a";\n\t\t"b";\n\t};\n};\n',
  );
  assert.is(serialize("\x07\b\f\n\r\t\v\\\"'\x00\x1f\x7f"), '"\\a\\b\\f\\n\\r\\t\\v\\\\\\"\\\'\\000\\031\\127"');
  assert.is(serialize("é"), '"\\195\\169"');
  assert.is(serialize("𝄞"), '"\\240\\157\\132\\158"');
  assert.is(serialize("plain text / with ~ all ] sorts [ of = ascii"), '"plain text / with ~ all ] sorts [ of = ascii"');
  assert.is(serialize(`a long string with "quotes", 'apostrophes' and \\ inside`), `"a long string with \\"quotes\\", \\'apostrophes\\' and \\\\ inside"`);
  assert.is(formatNumber(10000), "10000");
  assert.is(formatNumber(-7), "-7");
  assert.is(formatNumber(1.5), "1.5");
  assert.is(formatNumber(0.1), "0.100000000000000006");
  assert.is(formatNumber(12.0), "12");
  assert.is(formatNumber(1e300), "1.00000000000000005e+300");
  assert.is(formatNumber(2 ** 63), "9.22337203685477581e+18");
  assert.is(formatNumber(-(2 ** 63)), "-9223372036854775808");
  assert.is(formatNumber(2 ** 60), "1152921504606846976");
  assert.is(formatNumber(1000000000000000.125), "1000000000000000.12"); // tie: round half to even
  assert.is(formatNumber(5e-324), "4.94065645841246544e-324");
  assert.is(formatNumber(0.0001), "0.000100000000000000005");
  assert.is(formatNumber(1e-5), "1.00000000000000008e-05");
  assert.is(formatNumber(Infinity), "(1/0)");
  assert.is(formatNumber(-Infinity), "(-1/0)");
  assert.is(formatNumber(NaN), "(0/0)");
  assert.is(serialize(true), "true");
  assert.is(serialize(undefined), "nil");
  const shared = { a: 1 };
  assert.throws(() => serialize({ x: shared, y: shared }), /multiple references/);
  let deep: object = {};
  for (let i = 0; i < 127; i++) deep = { d: deep };
  assert.throws(() => serialize(deep), /max table depth/);
  assert.throws(() => serialize({ f: () => 1 }), /Can't serialize function/);
});

test("path encoding", async ({ dir, p }) => {
  assert.is(encodeNode("example.com"), "example%2ecom");
  assert.is(encodeNode("a_b-c~d"), "a%5fb%2dc%7ed");
  assert.is(encodeNode("ä"), "%c3%a4");
  assert.is(encodeNode("AZaz09"), "AZaz09");
  assert.is(encodeStore("invite_token"), "invite_token");
  assert.is(encodeStore("my-store.x"), "my%2dstore%2ex");
  assert.is(decode("%C3%A4%c3%a4"), "ää");
  assert.is(decode("a%5fb%2dc%7ed"), "a_b-c~d");
  assert.is(decode("100%"), "100%");
  assert.is(decode("%zz%4"), "%zz%4");
  for (const s of ["jüliet", "a.b@c/d", "😀 x", "%41", ""]) {
    assert.is(decode(encodeNode(s)), s);
    assert.is(decode(encodeStore(s)), s);
  }

  await kv(p, "my-store_x").set("jü.liet", { a: 1 });
  assert.ok(fs.existsSync(path.join(dir, "example%2ecom/my%2dstore_x/j%c3%bc%2eliet.dat")));
  await kv(p, "roster").set(null, { h: 1 });
  assert.ok(fs.existsSync(path.join(dir, "example%2ecom/roster.dat")), "null user: <host>/<store>.dat");
  assert.equal(await kv(p, "my-store_x").users(), ["jü.liet"]);
  assert.is(p.pathOf("accounts", "a_b"), path.join(fs.realpathSync(dir), "example%2ecom", "accounts", "a%5fb.dat"));

  const global = createInternalProvider({ dataPath: dir, host: null });
  await kv(global, "s").set("u", { g: true });
  assert.ok(fs.existsSync(path.join(dir, "_global/s/u.dat")));
});

test("empty record deletes the file; no temporary file is left", async ({ dir, p }) => {
  const file = path.join(dir, "example%2ecom/accounts/bob.dat");
  await kv(p, "accounts").set("bob", { x: 1 });
  assert.ok(fs.existsSync(file));
  await kv(p, "accounts").set("bob", {});
  assert.not.ok(fs.existsSync(file));
  await map(p, "accounts").set("bob", "k", "v");
  assert.ok(fs.existsSync(file));
  await map(p, "accounts").set("bob", "k", undefined);
  assert.not.ok(fs.existsSync(file));
  await map(p, "invite_token").setKeys(null, { a: 1, b: 2 });
  await map(p, "invite_token").deleteAll("a");
  await map(p, "invite_token").deleteAll("b");
  assert.not.ok(fs.existsSync(path.join(dir, "example%2ecom/invite_token.dat")));
  // (our lock directory holds this process's lock sockets, kept a moment for reuse: not data)
  const all = (d: string): string[] =>
    fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.name === ".prosody-ts-locks" ? [] : e.isDirectory() ? all(path.join(d, e.name)) : [e.name]));
  assert.equal(all(dir), []);
  for (const e of fs.readdirSync(path.join(dir, ".prosody-ts-locks"), { withFileTypes: true })) assert.ok(e.isSocket(), e.name);
});

test("modes: directories 0750, files 0640 (whatever the umask)", async ({ dir, p }) => {
  const old = process.umask(0o077);
  try {
    await kv(p, "accounts").set("alice", { a: 1 });
    await kv(p, "vcard").set(null, { a: 1 });
  } finally {
    process.umask(old);
  }
  const mode = (rel: string) => fs.statSync(path.join(dir, rel)).mode & 0o777;
  assert.is(mode("example%2ecom"), 0o750);
  assert.is(mode("example%2ecom/accounts"), 0o750);
  assert.is(mode("example%2ecom/accounts/alice.dat"), 0o640);
  assert.is(mode("example%2ecom/vcard.dat"), 0o640);
  // A replaced file keeps the mode it was given.
  fs.chmodSync(path.join(dir, "example%2ecom/accounts/alice.dat"), 0o600);
  await kv(p, "accounts").set("alice", { a: 2 });
  assert.is(mode("example%2ecom/accounts/alice.dat"), 0o600);
});

test("a change made from outside is seen on the next read (no stale cache)", async ({ dir, p }) => {
  const store = kv(p, "accounts");
  await store.set("alice", { v: "one" });
  assert.equal(await store.get("alice"), { v: "one" });
  const file = path.join(dir, "example%2ecom/accounts/alice.dat");
  const st = fs.statSync(file);
  // Same size, same mtime, same inode: only the content changes.
  const fd = fs.openSync(file, "r+");
  fs.writeSync(fd, 'return {\n\t["v"] = "two";\n};\n', 0);
  fs.closeSync(fd);
  fs.utimesSync(file, st.atime, st.mtime);
  assert.equal(await store.get("alice"), { v: "two" });
  assert.is(await map(p, "accounts").get("alice", "v"), "two");
  // Replaced by rename (as Prosody does), and deleted.
  fs.writeFileSync(file + "~", "return { v = 3, w = true };\n");
  fs.renameSync(file + "~", file);
  assert.equal(await store.get("alice"), { v: 3, w: true });
  fs.unlinkSync(file);
  assert.is(await store.get("alice"), undefined);
  // A map update re-reads too: an outside key is kept.
  fs.writeFileSync(file, 'return { ["outside"] = 1 };');
  await map(p, "accounts").set("alice", "ours", 2);
  assert.equal(await store.get("alice"), { outside: 1, ours: 2 });
});

test("big files (parse cache by content): outside changes seen, copies handed out, exact bytes", async ({ dir, p }) => {
  const invites = makeInviteTable(400, 9); // ~190 KB: above the cache threshold
  const m = map(p, "invite_token");
  const store = kv(p, "invite_token");
  await store.set(null, invites);
  const file = p.pathOf("invite_token", null);
  assert.ok(fs.statSync(file).size > 100_000);
  const tokens = Object.keys(invites);
  // Copies: mutating what we got changes nothing stored.
  const got = (await m.get(null, tokens[0]!)) as Record<string, unknown>;
  got.token = "mutated";
  const all = recordOf(await store.get(null));
  (all[tokens[1]!] as Record<string, unknown>).jid = "mutated";
  delete all[tokens[2]!];
  assert.equal(await store.get(null), invites);
  // Outside change of the same size, same mtime: seen.
  const st = fs.statSync(file);
  const text = fs.readFileSync(file, "latin1");
  const i = text.indexOf('"register"');
  fs.writeFileSync(file, text.slice(0, i) + '"REGISTER"' + text.slice(i + 10), "latin1");
  fs.utimesSync(file, st.atime, st.mtime);
  assert.is(fs.statSync(file).size, st.size);
  const changed = recordOf(await store.get(null));
  assert.is(Object.values(changed).filter((v) => (v as Record<string, unknown>).type === "REGISTER").length, 1);
  // A read-modify-write keeps the outside change, and the file is exactly what serialize gives.
  const extra = makeInviteTable(3, 10);
  for (const [tok, inv] of Object.entries(extra)) await m.set(null, tok, inv);
  await m.set(null, tokens[3]!, undefined);
  const want = { ...changed, ...extra };
  delete want[tokens[3]!];
  assert.equal(await store.get(null), want);
  assert.is(fs.readFileSync(file, "latin1"), serializeFile(want));
  // Many concurrent sets in one process: all kept (batched into few writes).
  const more = makeInviteTable(50, 11);
  await Promise.all(Object.entries(more).map(([tok, inv]) => m.set(null, tok, inv)));
  const final = recordOf(await store.get(null));
  for (const tok of Object.keys(more)) assert.equal(final[tok], more[tok]);
  assert.is(Object.keys(final).length, Object.keys(want).length + 50);
  void dir;
});

const SYNTAX_CASES: [string, string, unknown][] = [
  ["Prosody's own output", 'return {\n\t["a"] = "x";\n\t["n"] = 1;\n};\n', { a: "x", n: 1 }],
  ["no return", '{ ["a"] = 1 }', { a: 1 }],
  ["comma separators, trailing separator", "return { a = 1, b = 2, }", { a: 1, b: 2 }],
  ["mixed separators", "return { a = 1; b = 2, c = 3; }", { a: 1, b: 2, c: 3 }],
  ["name = value keys", "return { name = 'x', _under = 1, CamelCase2 = true }", { name: "x", _under: 1, CamelCase2: true }],
  ["bracketed keys of every kind", 'return { ["s"] = 1, [\'q\'] = 2, [ [[long]] ] = 3, [5] = 4, [2.5] = 5, [true] = 6, [-1] = 7 }', { "5": 4, "2.5": 5, true: 6, "-1": 7, s: 1, q: 2, long: 3 }],
  ["positional items → array", 'return { list = { "a", "b", [3] = "c" } }', { list: ["a", "b", "c"] }],
  ["nested empty table", "return { e = {} }", { e: {} }],
  ["double-quoted escapes", 'return { s = "\\a\\b\\f\\n\\r\\t\\v\\\\\\"\\\'" }', { s: "\x07\b\f\n\r\t\v\\\"'" }],
  ["single-quoted escapes", "return { s = '\\'\"\\65\\066\\0677' }", { s: "'\"ABC7" }],
  ["decimal escapes as UTF-8 bytes", 'return { s = "\\195\\169t\\195\\169" }', { s: "été" }],
  ["\\xXX", 'return { s = "\\x41\\xc3\\xA9" }', { s: "Aé" }],
  ["\\z", 'return { s = "a\\z   \n\t  b" }', { s: "ab" }],
  ["\\u{XXX}", 'return { s = "\\u{48}\\u{e9}\\u{1D11E}" }', { s: "Hé𝄞" }],
  ["backslash-newline", 'return { s = "a\\\nb\\\r\nc" }', { s: "a\nb\nc" }],
  ["raw UTF-8 in strings", 'return { s = "日本 ✓" }', { s: "日本 ✓" }],
  ["invalid UTF-8 → U+FFFD", 'return { s = "a\\255b" }', { s: "a\ufffdb" }],
  ["long strings", "return { a = [[x]], b = [==[y]]z]=]w]==], c = [[\nfirst newline skipped]], d = [[a\r\nb]] }", { a: "x", b: "y]]z]=]w", c: "first newline skipped", d: "a\nb" }],
  ["numerals", "return { 1, 0x10, 0XfF, 1.5, .5, 3., 1e3, 1E-2, 2.5e+1, 0x1p4, 0x.8, 0xA.8P1 }", { "0": 0 }],
  ["unary minus", "return { a = -1, b = - 2.5, c = -0x10, d = - - 3 }", { a: -1, b: -2.5, c: -16, d: 3 }],
  ["parenthesised divisions", "return { a = (1/0), b = (-1/0), c = 1/2, d = ((3)) }", { a: Infinity, b: -Infinity, c: 0.5, d: 3 }],
  ["true/false/nil", "return { t = true, f = false, n = nil, [1] = nil }", { t: true, f: false }],
  ["comments", "-- header\nreturn { --[[ block\n comment ]] a = 1, -- line\n --[==[ level ]] ]==] b = 2 } -- end", { a: 1, b: 2 }],
  ["whitespace everywhere", " \t\r\n\v\freturn\n{\n[ \"a\" ]\n=\n1\n}\n;\n", { a: 1 }],
  ["hex integer wraps like Lua", "return { a = 0xffffffffffffffff, b = 0x7fffffffffffffff }", { a: -1, b: 9223372036854775807 }],
  ["positional array at top level → a sequence (array)", 'return { "a", "b" }', ["a", "b"]],
  ["positions and names at top level (a mixed table) → record, positions keyed 1..n", 'return { "a", "b", x = 1 }', { "1": "a", "2": "b", x: 1 }],
];

test("reader: every Lua syntax a data file may use", async ({ dir, p }) => {
  const store = kv(p, "syntax");
  for (const [label, text, want] of SYNTAX_CASES) {
    const file = p.pathOf("syntax", "u");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
    const got = await store.get("u");
    if (label === "numerals") {
      assert.equal(got, [1, 16, 255, 1.5, 0.5, 3, 1000, 0.01, 25, 16, 0.5, 21], label);
    } else assert.equal(got, want as object, label);
  }
  assert.is(readLuaString(""), undefined);
  assert.is(readLuaString("return"), undefined);
  assert.is(readLuaString("return nil;"), undefined);
  assert.ok(Number.isNaN(readLuaString("return (0/0)")));
  assert.equal(readLuaString('return {"a", nil, "c"}'), { "1": "a", "3": "c" });
  assert.equal(readLuaString("return {[1]='x', [2]='y'}"), ["x", "y"]);
  assert.equal(readLuaString("return {'a', [1]='b'}"), ["a"]); // positional items are stored last, as in Lua
  assert.equal(readLuaString("return {a = 1, a = 2}"), { a: 2 });
  assert.equal(readLuaString('return {["__proto__"] = 1}'), JSON.parse('{"__proto__": 1}'));
  // Missing file and empty file: no record.
  assert.is(await kv(p, "syntax").get("nobody"), undefined);
  fs.writeFileSync(p.pathOf("syntax", "empty"), "");
  assert.is(await store.get("empty"), undefined);
  void dir;
});

const HOSTILE: [string, string][] = [
  ["os.execute", 'os.execute("touch /tmp/pwned")'],
  ["return os.execute", 'return os.execute("id")'],
  ["function", "return function() end"],
  ["global name", "return x"],
  ["name as value", "return { a = x }"],
  ["call in a table", 'return { a = print("hi") }'],
  ["method call on a string", 'return { a = ("x"):rep(10) }'],
  ["concatenation", 'return { a = "x" .. "y" }'],
  ["addition", "return { a = 1 + 2 }"],
  ["length", "return { a = #'abc' }"],
  ["unterminated string", 'return { a = "abc }'],
  ["newline in string", 'return { a = "ab\ncd" }'],
  ["unterminated long string", "return { a = [[abc }"],
  ["unterminated table", "return { a = 1"],
  ["unterminated comment", "return { a = 1 } --[[ open"],
  ["deeply nested tables", "return " + "{".repeat(100_000) + "}".repeat(100_000)],
  ["deeply nested parentheses", "return " + "(".repeat(100_000) + "1" + ")".repeat(100_000)],
  ["deeply nested minus", "return " + "- ".repeat(100_000) + "1"],
  ["statement after return", "return {} x = 1"],
  ["two statements", "x = 1 return {}"],
  ["invalid escape", 'return { a = "\\q" }'],
  ["decimal escape too large", 'return { a = "\\256" }'],
  ["malformed number", "return { a = 3x }"],
  ["nil key", "return { [nil] = 1 }"],
  ["NaN key", "return { [0/0] = 1 }"],
  ["table key", "return { [{}] = 1 }"],
  ["while loop", "while true do end"],
  ["binary chunk", "\x1bLua\x54\x00"],
  ["string, not a table", 'return "just a string"'],
  ["number, not a table", "return 42"],
];

test("hostile and malformed files → StorageError naming the file (never executed, never empty)", async ({ dir, p }) => {
  const store = kv(p, "accounts");
  const m = map(p, "accounts");
  const file = p.pathOf("accounts", "mallory");
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (const [label, text] of HOSTILE) {
    fs.writeFileSync(file, text);
    const t0 = performance.now();
    const err = await rejects(store.get("mallory"), file);
    assert.ok(performance.now() - t0 < 2000, `${label}: too slow`);
    if (!label.includes("not a table")) assert.match(err.message, /:\d+: /, `${label}: line number in "${err.message}"`);
    await rejects(m.get("mallory", "a"), file);
    // A read-modify-write refuses to touch it.
    await rejects(m.set("mallory", "a", 1), file);
    assert.is(fs.readFileSync(file, "latin1"), Buffer.from(text).toString("latin1"), `${label}: file changed`);
  }
  assert.not.ok(fs.existsSync("/tmp/pwned-by-prosody-ts"));
  // Errors name the line.
  fs.writeFileSync(file, 'return {\n\t["a"] = 1;\n\t["b"] = os.getenv("HOME");\n};\n');
  await rejects(store.get("mallory"), `${file}:3:`, "os");
  // A directory where the file should be.
  fs.rmSync(file);
  fs.mkdirSync(file);
  await rejects(store.get("mallory"), file);
  void dir;
});

test("users(): decoded names of the store's .dat files only", async ({ dir, p }) => {
  const store = kv(p, "accounts");
  await store.set("alice", { a: 1 });
  await store.set("jü.liet", { a: 1 });
  const d = path.join(dir, "example%2ecom/accounts");
  fs.writeFileSync(path.join(d, "alice.dat~"), "return {};");
  fs.writeFileSync(path.join(d, ".bob.dat.0123456789ab.tmp"), "");
  fs.writeFileSync(path.join(d, "carol.list"), "");
  fs.mkdirSync(path.join(d, "dir.dat"));
  fs.writeFileSync(path.join(d, "D%C3%A4ve.dat"), "return { a = 1 };");
  assert.equal((await store.users()).sort(), ["Däve", "alice", "jü.liet"]);
  assert.equal(await kv(p, "nothing").users(), []);
});

test("purge removes the user's .dat and .list files in every store", async ({ dir, p }) => {
  await kv(p, "accounts").set("alice", { a: 1 });
  await kv(p, "roster").set("alice", { a: 1 });
  await kv(p, "roster").set("bob", { b: 1 });
  await kv(p, "roster").set(null, { h: 1 });
  fs.writeFileSync(path.join(dir, "example%2ecom/roster/alice.list"), "item({});\n");
  await p.purge!("alice");
  assert.not.ok(fs.existsSync(path.join(dir, "example%2ecom/accounts/alice.dat")));
  assert.not.ok(fs.existsSync(path.join(dir, "example%2ecom/roster/alice.dat")));
  assert.not.ok(fs.existsSync(path.join(dir, "example%2ecom/roster/alice.list")));
  assert.equal(await kv(p, "roster").get("bob"), { b: 1 });
  assert.equal(await kv(p, "roster").get(null), { h: 1 });
  await createInternalProvider({ dataPath: path.join(dir, "none"), host: "x" }).purge!("alice"); // no host dir: fine
});

test("leftover temporary files of dead writers are removed, live ones kept", async ({ dir, p }) => {
  await kv(p, "accounts").set("seed", { a: 1 }); // creates the directories
  const d = path.join(dir, "example%2ecom/accounts");
  const stale = path.join(d, ".alice.dat.0123456789ab.tmp");
  const fresh = path.join(d, ".bob.dat.ba9876543210.tmp");
  fs.writeFileSync(stale, "return {");
  fs.writeFileSync(fresh, "return {");
  const old = new Date(Date.now() - 3600_000);
  fs.utimesSync(stale, old, old);
  const p2 = createInternalProvider({ dataPath: dir, host: "example.com" }); // a "new process"
  await kv(p2, "accounts").set("carol", { c: 1 });
  assert.not.ok(fs.existsSync(stale));
  assert.ok(fs.existsSync(fresh));
});

// Issue 11 item 7: the temporary name (~22 bytes longer than Prosody's `<name>.dat~`) limited names.
test("temporary files are `.<random>.tmp`; the sweep takes old and new forms, never data or Prosody's `.dat~`", async ({ dir, p }) => {
  await kv(p, "accounts").set("seed", { a: 1 });
  const d = path.join(dir, "example%2ecom/accounts");
  const names = {
    staleNew: ".0123456789ab.tmp",
    staleOld: ".alice.dat.0123456789ab.tmp",
    data: "dave.dat",
    prosodyTemp: "erin.dat~",
    dotted: "%2e0123456789ab.tmp",
  };
  for (const name of Object.values(names)) fs.writeFileSync(path.join(d, name), "return {};\n");
  const old = new Date(Date.now() - 3600_000);
  for (const name of Object.values(names)) fs.utimesSync(path.join(d, name), old, old);
  // Watch the directory while a new process writes: its temporary file has the short form.
  const seen: string[] = [];
  const watcher = fs.watch(d, (_, f) => f && seen.push(String(f)));
  const p2 = createInternalProvider({ dataPath: dir, host: "example.com" });
  await kv(p2, "accounts").set("carol", { c: 1 });
  await new Promise((r) => setTimeout(r, 50));
  watcher.close();
  const temps = seen.filter((f) => f.endsWith(".tmp") && f !== names.staleNew && f !== names.staleOld);
  assert.ok(temps.length > 0, "a temporary file was used");
  for (const f of temps) assert.match(f, /^\.[0-9a-f]{12}\.tmp$/);
  const left = fs.readdirSync(d).sort();
  assert.equal(left, ["carol.dat", names.dotted, names.data, names.prosodyTemp, "seed.dat"].sort());
});

test("names: 250 bytes encoded are stored; longer ones are refused with NameTooLongError and read as absent", async ({ dir, p }) => {
  const accounts = kv(p, "accounts");
  await accounts.set("a".repeat(250), { x: 1 });
  assert.equal(await accounts.get("a".repeat(250)), { x: 1 });
  await accounts.set("é".repeat(41) + "abcd", { y: 1 }); // 41 × %c3%a9 + 4 = 250
  assert.equal(await accounts.get("é".repeat(41) + "abcd"), { y: 1 });
  for (const user of ["a".repeat(251), "é".repeat(42), "b".repeat(300), "c".repeat(5000)]) {
    const err = await rejects(accounts.set(user, { x: 1 }), "name too long for internal storage", "at most 250");
    assert.instance(err, NameTooLongError);
    await rejects(map(p, "accounts").set(user, "k", "v"), "name too long");
    assert.is(await accounts.get(user), undefined);
    assert.is(await map(p, "accounts").get(user, "k"), undefined);
    await accounts.set(user, undefined); // deleting what cannot exist is a no-op
    await p.purge!(user);
  }
  assert.equal(fs.readdirSync(path.join(dir, "example%2ecom/accounts")).sort(), ["%c3%a9".repeat(41) + "abcd.dat", "a".repeat(250) + ".dat"]);
});

test("unstorable data is refused before anything is written", async ({ dir, p }) => {
  await rejects(kv(p, "accounts").set("u", { n: NaN }));
  await rejects(map(p, "accounts").set("u", "k", { f: (() => 1) as unknown as string }));
  await rejects(kv(p, "accounts").set("u", Object.assign(["a", "sequence"], { and: "a name" })));
  assert.not.ok(fs.existsSync(path.join(dir, "example%2ecom/accounts/u.dat")));
  assert.throws(() => p.open("", "keyval"), (e: unknown) => e instanceof StorageError);
});

test("mod_storage_internal: the default driver, loaded through the storage manager", async ({ dir }) => {
  const { createRuntime } = await import("../../src/create-runtime.js");
  const { makeConfig } = await import("../helpers/config.js");
  const rt = createRuntime({ config: makeConfig({ data_path: dir }, { "example.com": {} }), processType: "prosodyctl" });
  assert.is(rt.storage.driverName("example.com", "accounts"), "internal");
  const accounts = await rt.storage.open("example.com", "accounts");
  await accounts.set("alice", ACCOUNT);
  assert.is(fs.readFileSync(path.join(dir, "example%2ecom/accounts/alice.dat"), "latin1"), serializeFile(ACCOUNT));
  const invites = await rt.storage.open("example.com", "invite_token", "map");
  await invites.set(null, "HAjssEG5yUedAb369F4zRcJQ", INVITE.HAjssEG5yUedAb369F4zRcJQ);
  assert.is(fs.readFileSync(path.join(dir, "example%2ecom/invite_token.dat"), "latin1"), serializeFile(INVITE));
  assert.equal(await (await rt.storage.open("example.com", "invite_token")).get(null), INVITE);
});

test.run();
