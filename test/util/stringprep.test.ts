import { test } from "uvu";
import * as assert from "uvu/assert";
import { nameprep, nodeprep, saslprep } from "../../src/util/stringprep.js";
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

// Issue 11 item 9: values printed by Prosody 0.12.3's util.encodings on Debian (ICU 72); the full
// comparison is test/util/stringprep-prosody.test.ts.
test("nodeprep/nameprep/saslprep: Prosody's results where toLowerCase or current Unicode differ", () => {
  const cases: Array<[string, string | undefined, string | undefined, string | undefined, string | undefined]> = [
    // input, nodeprep, nodeprep strict, nameprep, saslprep
    ["ΣΑΣ", "σασ", "σασ", "σασ", "ΣΑΣ"], // no final-sigma rule
    ["ᾈ", "ἀι", "ἀι", "ἀι", "ᾈ"],
    ["ẞ", "ẞ", undefined, "ẞ", "ẞ"], // Unicode 5.1: unassigned in 3.2, kept as it is
    ["ǅ", "d\u017E", "d\u017E", "d\u017E", "D\u017E"],
    ["İ", "i\u0307", "i\u0307", "i\u0307", "İ"],
    ["\u07C0", "\u07C0", undefined, "\u07C0", "\u07C0"], // NKo: R in ICU 72's bidi data
    ["a\u07C0", undefined, undefined, undefined, undefined],
    ["I\u00ADX", "ix", "ix", "ix", "IX"],
    ["a\u200Bb", "ab", "ab", "ab", "a b"], // saslprep maps U+200B to a space
    ["\u{2F868}", "\u{2136A}", "\u{2136A}", "\u{2136A}", "\u{2136A}"], // Unicode 3.2's decomposition
    ["a b", undefined, undefined, "a b", "a b"],
    ["a\u00A0b", undefined, undefined, "a b", "a b"],
    ["\u06271\u0628", "\u06271\u0628", "\u06271\u0628", "\u06271\u0628", "\u06271\u0628"],
    ["1\u05D0", undefined, undefined, undefined, undefined],
    ["a\u0000b", undefined, undefined, "a\u0000b", undefined],
    ["Ⅻ", "xii", "xii", "xii", "XII"],
  ];
  for (const [input, node, nodeStrict, name, sasl] of cases) {
    assert.is(nodeprep(input), node, `nodeprep ${JSON.stringify(input)}`);
    assert.is(nodeprep(input, true), nodeStrict, `nodeprep strict ${JSON.stringify(input)}`);
    assert.is(nameprep(input), name, `nameprep ${JSON.stringify(input)}`);
    assert.is(saslprep(input), sasl, `saslprep ${JSON.stringify(input)}`);
  }
  assert.is(nodeprep("\uD800"), undefined, "a lone surrogate");
  assert.is(saslprep("p".repeat(1023)), "p".repeat(1023));
  assert.is(saslprep("p".repeat(1024)), undefined, "1024 bytes: Prosody refuses it");
  assert.is(nodeprep("\uFDFA".repeat(56)), undefined, "a result over 1023 bytes (18 letters each)");
});

test("nameprep: lower-cases, allows the characters nodeprep forbids", () => {
  assert.is(nameprep("Example.COM"), "example.com");
  assert.is(nameprep("a@b"), "a@b");
  // ASCII controls are not prohibited by nameprep (RFC 3491 leaves out C.2.1), as in Prosody.
  assert.is(nameprep("bad\u0001"), "bad\u0001");
  assert.is(nameprep("bad\u0080"), undefined);
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
