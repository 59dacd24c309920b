import { test } from "uvu";
import * as assert from "uvu/assert";
import { nameprep, nodeprep } from "../../src/util/stringprep.js";
import { id, uuid } from "../../src/util/id.js";

test("nodeprep: Prosody's verified samples", () => {
  const ok: Array<[string, string]> = [
    ["Alice", "alice"],
    ["Ärger", "ärger"],
    ["straße", "strasse"],
    ["a.b", "a.b"],
    ["a-b_c+d", "a-b_c+d"],
    ["ﬀ", "ff"],
    ["Ⅻ", "xii"],
    ["", ""],
  ];
  for (const [input, out] of ok) assert.is(nodeprep(input), out, input);
  for (const bad of ["alice smith", "a@b", "a/b", "a:b", "a<b", "a>b", "a&b", "a'b", 'a"b', "a\tb", "a\u00A0b", "א1", "a\uE000"]) {
    assert.is(nodeprep(bad), undefined, JSON.stringify(bad));
  }
  assert.is(nodeprep("a".repeat(1023)), "a".repeat(1023));
  assert.is(nodeprep("a".repeat(1024)), undefined);
  assert.is(nodeprep("soft\u00ADhyphen"), "softhyphen");
});

test("nameprep: lower-cases, allows the characters nodeprep forbids", () => {
  assert.is(nameprep("Example.COM"), "example.com");
  assert.is(nameprep("a@b"), "a@b");
  assert.is(nameprep("bad\u0001"), undefined);
});

test("ids: Prosody's lengths and alphabet", () => {
  const b64url = /^[A-Za-z0-9_-]+$/;
  for (const [f, n] of [[id.tiny, 4], [id.short, 12], [id.medium, 24], [id.long, 36]] as const) {
    const v = f();
    assert.is(v.length, n);
    assert.match(v, b64url);
  }
  assert.is(id.custom(5)().length, 7);
  assert.match(uuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.is.not(id.medium(), id.medium());
  // ids come from a pool of random bytes: many in a row are all distinct, across pool refills
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) seen.add(id.medium());
  assert.is(seen.size, 5000);
  assert.throws(() => id.custom(0)(), /bad length/);
});

test.run();
