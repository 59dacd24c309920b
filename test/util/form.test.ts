import { test } from "uvu";
import * as assert from "uvu/assert";
import { formdecode, urldecode } from "../../src/util/form.js";

test("formdecode: + is a space, %XX decoded, last duplicate wins, pieces without = ignored", () => {
  const f = formdecode("key=a%2Fb+c&x&key=second&redirect=&e%3Dq=v%26w");
  assert.equal([...f], [
    ["key", "second"],
    ["redirect", ""],
    ["e=q", "v&w"],
  ]);
  assert.equal([...formdecode(undefined)], []);
  assert.equal([...formdecode("")], []);
});

test("urldecode never throws: malformed escapes kept, bad UTF-8 replaced", () => {
  assert.is(urldecode("%zz%4"), "%zz%4");
  assert.is(urldecode("%C3%A9"), "é");
  assert.is(urldecode("%FF"), "\uFFFD");
  assert.is(urldecode("a+b"), "a b");
});

test.run();
