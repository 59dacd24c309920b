/**
 * ASCII input (host names in a config, most user names) is prepared without decoding any of the
 * stringprep range tables: prosodyctl reads its config (nameprep of each host) before sending a
 * command to the running server, and the decoding was ~0.5 ms of that (issue 15). Its own process,
 * so nothing has decoded a table before it starts.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodedRangeSets, nameprep, nodeprep, saslprep } from "../../src/util/stringprep.js";

test("ASCII input decodes no table, prohibited ASCII included; the first non-ASCII input does", () => {
  assert.is(nameprep("Example.COM"), "example.com");
  assert.is(nodeprep("Alice"), "alice");
  assert.is(saslprep("Pass word"), "Pass word");
  assert.is(nodeprep("alice smith"), undefined, "C.1.1 in nodeprep");
  assert.is(nodeprep("a@b"), undefined, "nodeprep's specials");
  assert.is(nodeprep("a\tb"), undefined, "C.2.1 in nodeprep");
  assert.is(saslprep("a\u0007b"), undefined, "C.2.1 in saslprep");
  assert.is(nameprep("a\tb"), "a\tb", "nameprep leaves ASCII controls to the caller, as Prosody's");
  assert.is(decodedRangeSets(), 0);
  assert.is(nodeprep("Ärger"), "ärger");
  assert.is(nodeprep("a\u00A0b"), undefined, "C.1.2 (a non-ASCII space)");
  assert.ok(decodedRangeSets() > 0);
});

test.run();
