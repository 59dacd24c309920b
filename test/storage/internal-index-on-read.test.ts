/**
 * Issue 15 item 5: a big data file read from disk comes with the places of its members (the
 * EntryIndex serialize.ts makes when it writes), so the first change in a process splices the file
 * (internal/splice.ts) instead of serialising all of it again: a cold `prosodyctl mod_invites
 * generate` at 100k invites no longer serialises 35 MB. The index read back must be the very one
 * the serialiser made (seeded random records), and be refused for tables it cannot describe.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DataFiles } from "../../src/storage/internal/data-files.js";
import { ParseCache } from "../../src/storage/internal/parse-cache.js";
import { readLuaDataIndexed } from "../../src/storage/lua/read.js";
import { serializeFileBytes, type EntryIndex } from "../../src/storage/lua/serialize.js";
import type { StoreRecord, StoreValue } from "../../src/storage/types.js";
import { applyMapChanges } from "../../src/storage/values.js";
import { seededRandom } from "../helpers/seed.js";

const { random } = seededRandom();
const int = (n: number) => Math.floor(random() * n);
const KEYS = ["a", "tok", "__proto__", "é", 'q"uote', "x y", "00", "1e3", "-1", "return", "\n", "k;", "}"];
const VALUES: StoreValue[] = [1, -2.5, "s", "a;b}", true, false, { nested: { x: [1, 2, { y: "}" }] } }, {}, ["a", "b"]];

test("the index read from a file we serialised is the serialiser's own", () => {
  for (let round = 0; round < 300; round++) {
    const rec: StoreRecord = {};
    const n = 1 + int(30);
    for (let i = 0; i < n; i++) applyMapChanges(rec, [[int(3) === 0 ? KEYS[int(KEYS.length)]! : `k${int(100)}`, structuredClone(VALUES[int(VALUES.length)]!)]]);
    if (Object.keys(rec).length === 0) continue;
    const made: EntryIndex = new Map();
    const bytes = serializeFileBytes(rec, undefined, made);
    const { value, index } = readLuaDataIndexed(bytes, "t");
    assert.equal(value, rec);
    assert.ok(index, `round ${round}: an index`);
    assert.equal([...index!], [...made], `round ${round}: the same places, in the same order`);
  }
});

test("no index for what a splice could not keep as it is", () => {
  const none = (src: string) => assert.is(readLuaDataIndexed(Buffer.from(src), "t").index, undefined, src);
  none(`return { a = 1; "positional"; };`);
  none(`return { a = 1; a = 2; };`);
  none(`return { a = 1; b = nil; };`);
  none(`return { ["17"] = 1; };`);
  none(`return { [17] = 1; };`);
  none(`return { a = 1; b = 2 };`); // the last member has no separator
  none(`return ({ a = 1; });`);
  none(`{ a = 1; }`);
  const some = readLuaDataIndexed(Buffer.from(`return {\n\ta = 1,\n\t["b"] = { c = 2 }; -- note\n};\n`), "t");
  assert.equal([...some.index!], [["a", [8, 16]], ["b", [16, 36]]]);
});

test("the first change to a big file written elsewhere is a splice, and exact", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-index-"));
  try {
    const file = path.join(dir, "invite_token.dat");
    const model: StoreRecord = {};
    for (let i = 0; i < 3000; i++) model[`tok${String(i).padStart(20, "0")}`] = { token: `t${i}`, created_at: 1700000000 + i, type: "register" };
    fs.writeFileSync(file, serializeFileBytes(model)); // not by these DataFiles: they hold no index
    const files = new DataFiles(new ParseCache(), () => {});
    const { entry } = await files.readShared(file);
    assert.ok(entry, "a big file is cached");
    const changes: [string, StoreValue | undefined][] = [["tok00000000000000000007", undefined], ["new", { token: "n" }], ["tok00000000000000000100", { token: "changed" }]];
    assert.is(await files.writeChanges(file, entry!, changes), "done", "spliced, not written whole");
    applyMapChanges(model, changes);
    assert.is(fs.readFileSync(file, "latin1"), serializeFileBytes(model).toString("latin1"));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
