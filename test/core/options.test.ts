import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRuntime } from "../../src/create-runtime.js";
import { luaToNumber } from "../../src/core/options.js";
import { makeConfig } from "../helpers/config.js";
import { captureLogs } from "../helpers/logs.js";
import { pluginDir } from "../helpers/plugins.js";

const PLUGINS = pluginDir({ opts: "export default function () {}" });

async function mod(global: Record<string, any>, host: Record<string, any> = {}) {
  const rt = createRuntime({
    config: makeConfig({ plugin_paths: [PLUGINS], data_path: "/var/data", ...global }, { "h.example": host }),
    processType: "server",
  });
  return rt.modules.load("h.example", "opts");
}

test("getOption: host value, else global value, else default (no merging of tables)", async () => {
  const m = await mod({ a: "global", b: "global-b", list: ["x", "y"] }, { a: "host", list: ["z"] });
  assert.is(m.getOption("a"), "host");
  assert.is(m.getOption("b"), "global-b");
  assert.is(m.getOption("c", "dflt"), "dflt");
  assert.is(m.getOption("c"), undefined);
  assert.equal(m.getOption("list"), ["z"]);
  assert.is(m.context().getOption("a"), "global");
});

test("getOptionString: tostring of scalars, first item of a list with an error logged", async () => {
  const logs = captureLogs();
  try {
    const m = await mod({ n: 5, b: true, l: ["first", "second"], one: ["only"] });
    assert.is(m.getOptionString("n"), "5");
    assert.is(m.getOptionString("b"), "true");
    assert.is(m.getOptionString("one"), "only");
    assert.is(logs.messages("error").length, 0);
    assert.is(m.getOptionString("l"), "first");
    assert.equal(logs.messages("error"), ["Config option 'l' does not take a list, using just the first item"]);
    assert.is(m.getOptionString("missing", "d"), "d");
    assert.is(m.getOptionString("missing"), undefined);
  } finally {
    logs.restore();
  }
});

test("getOptionNumber: tonumber rules; unconvertible logs and gives undefined", async () => {
  const logs = captureLogs();
  try {
    const m = await mod({ a: "42", b: " 0x10 ", c: "1e3", d: "abc", e: 7.5 });
    assert.is(m.getOptionNumber("a"), 42);
    assert.is(m.getOptionNumber("b"), 16);
    assert.is(m.getOptionNumber("c"), 1000);
    assert.is(m.getOptionNumber("e"), 7.5);
    assert.is(m.getOptionNumber("missing", 604800), 604800);
    assert.is(m.getOptionNumber("d"), undefined);
    assert.equal(logs.messages("error"), ["Config option 'd' not understood, expecting a number"]);
  } finally {
    logs.restore();
  }
});

test("getOptionBoolean: true/'true'/1 and false/'false'/0; anything else logs and gives undefined", async () => {
  const logs = captureLogs();
  try {
    const m = await mod({ t1: true, t2: "true", t3: 1, f1: false, f2: "false", f3: 0, bad: "yes" });
    for (const k of ["t1", "t2", "t3"]) assert.is(m.getOptionBoolean(k), true, k);
    for (const k of ["f1", "f2", "f3"]) assert.is(m.getOptionBoolean(k), false, k);
    assert.is(m.getOptionBoolean("missing", true), true);
    assert.is(m.getOptionBoolean("bad"), undefined);
    assert.equal(logs.messages("error"), ["Config option 'bad' not understood, expecting true/false"]);
  } finally {
    logs.restore();
  }
});

test("getOptionArray / getOptionSet: scalar wraps, list copies, missing stays undefined", async () => {
  const m = await mod({ s: "one", l: ["a", "b", "a"] });
  assert.equal(m.getOptionArray("s"), ["one"]);
  const arr = m.getOptionArray("l")!;
  assert.equal(arr, ["a", "b", "a"]);
  arr.push("mutated");
  assert.equal(m.getOptionArray("l"), ["a", "b", "a"], "a copy, not the config's table");
  assert.is(m.getOptionArray("missing"), undefined);
  assert.equal(m.getOptionArray("missing", ["d"]), ["d"]);
  assert.equal([...m.getOptionSet("l")!], ["a", "b"]);
});

test("getOptionInheritedSet: union of the host's and the global set", async () => {
  const m = await mod({ admins: ["root@g"] }, { admins: ["alice@h", "root@g"] });
  assert.equal([...m.getOptionInheritedSet("admins")!].sort(), ["alice@h", "root@g"]);
  const onlyGlobal = await mod({ admins: ["root@g"] });
  assert.equal([...onlyGlobal.getOptionInheritedSet("admins")!], ["root@g"]);
  const none = await mod({});
  assert.is(none.getOptionInheritedSet("admins"), undefined);
});

test("getOptionPath: relative to the module's directory, a named path, or absolute as is", async () => {
  const m = await mod({ rel: "templates/x.html", abs: "/etc/x", data_rel: "keys.db" });
  assert.match(m.getOptionPath("rel")!, new RegExp(`^${PLUGINS}/mod_opts/templates/x\\.html$`));
  assert.is(m.getOptionPath("abs"), "/etc/x");
  assert.is(m.getOptionPath("data_rel", undefined, "data"), "/var/data/keys.db");
  assert.is(m.getOptionPath("missing"), undefined);
});

test("luaToNumber follows Lua's tonumber for strings", () => {
  assert.is(luaToNumber("10"), 10);
  assert.is(luaToNumber("-0x1F"), -31);
  assert.is(luaToNumber(".5"), 0.5);
  assert.is(luaToNumber("5."), 5);
  assert.is(luaToNumber("1e"), undefined);
  assert.is(luaToNumber(""), undefined);
  assert.is(luaToNumber("12abc"), undefined);
});

test.run();
