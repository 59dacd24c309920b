/** Evaluating prosody.cfg.lua: sections, options, sandbox, values, Include, warnings (spec §5). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile, loadConfigString } from "../../src/core/config/index.js";
import { fixture } from "./_helpers.js";

const load = (text: string, opts?: Parameters<typeof loadConfigString>[2]) =>
  loadConfigString(text, "/srv/chat/prosody.cfg.lua", opts);
const options = async (text: string, host = "*", opts?: Parameters<typeof loadConfigString>[2]) =>
  (await load(text, opts)).sections.get(host)?.options;

const sections = suite("core/config: sections");

sections("starts in the global section and every global assignment sets an option", async () => {
  const config = await load(`admins = { "a@example.com" }\nstorage = "sql"`);
  assert.equal([...config.sections.keys()], ["*"]);
  const global = config.sections.get("*")!;
  assert.equal(global.kind, "global");
  assert.is(global.file, "/srv/chat/prosody.cfg.lua");
  assert.is(global.line, undefined);
  assert.equal(global.options, { admins: ["a@example.com"], storage: "sql" });
});

sections("locals are not options", async () => {
  assert.equal(await options(`local secret = "x"\nlocal a, b = 1, 2\nvisible = secret .. a .. b`), { visible: "x12" });
});

sections("VirtualHost, Host and host switch the section until the next section statement", async () => {
  const config = await load([
    `top = 1`,
    `VirtualHost "a.example"`,
    `  x = "a"`,
    `Host "b.example"`,
    `  x = "b"`,
    `host "c.example"`,
    `  x = "c"`,
    `still_c = true`,
  ].join("\n"));
  assert.equal(config.hosts(), ["a.example", "b.example", "c.example"]);
  assert.equal(config.sections.get("*")!.options, { top: 1 });
  assert.equal(config.sections.get("a.example"), {
    name: "a.example", kind: "VirtualHost", options: { defined: true, x: "a" }, file: "/srv/chat/prosody.cfg.lua", line: 2,
  });
  assert.equal(config.sections.get("c.example")!.options, { defined: true, still_c: true, x: "c" });
});

sections("host names are nameprepped (NFKC, lower case) and a repeated host reopens its section", async () => {
  const config = await load(`VirtualHost "Chat.EXAMPLE.org"\na = 1\nVirtualHost "other.example"\nVirtualHost "\u{FF23}hat.example.org"\nb = 2`);
  assert.equal(config.hosts(), ["chat.example.org", "other.example"]);
  assert.equal(config.sections.get("chat.example.org")!.options, { a: 1, b: 2, defined: true });
  assert.is(config.sections.get("chat.example.org")!.line, 1);
});

sections("Component forms set component_module and load_global_modules", async () => {
  const config = await load([
    `Component "ext.example"`,
    `  component_secret = "s"`,
    `Component "rooms.example" "muc"`,
    `  restrict_room_creation = "local"`,
    `component "lower.example" "proxy65"`,
  ].join("\n"));
  assert.equal(config.sections.get("ext.example")!.options, { component_module: "component", component_secret: "s", load_global_modules: false });
  assert.equal(config.sections.get("rooms.example")!.kind, "Component");
  assert.equal(config.sections.get("rooms.example")!.options, { component_module: "muc", load_global_modules: false, restrict_room_creation: "local" });
  assert.is(config.getRaw("lower.example", "component_module"), "proxy65");
});

sections("table forms apply their options and return to the global section", async () => {
  const config = await load([
    `VirtualHost "a.example" { enabled = false, ["http_host"] = "web.example" }`,
    `g1 = 1`,
    `Component "rooms.example" "muc" { max_history_messages = 20 }`,
    `g2 = 2`,
    `Component "ext.example" { component_secret = "s" }`,
    `g3 = 3`,
    `VirtualHost("b.example")({ x = 1 })`,
    `g4 = 4`,
  ].join("\n"));
  assert.equal(config.sections.get("*")!.options, { g1: 1, g2: 2, g3: 3, g4: 4 });
  assert.equal(config.sections.get("a.example")!.options, { defined: true, enabled: false, http_host: "web.example" });
  assert.equal(config.sections.get("rooms.example")!.options, { component_module: "muc", load_global_modules: false, max_history_messages: 20 });
  assert.equal(config.sections.get("ext.example")!.options, { component_module: "component", component_secret: "s", load_global_modules: false });
  assert.equal(config.sections.get("b.example")!.options, { defined: true, x: 1 });
});

sections.run();

const sandbox = suite("core/config: Lua sandbox");

sandbox("reading an option name gives nil, as in Prosody (options are not globals)", async () => {
  // Prosody's env __index only looks at ENV_ and Lua's globals, never at the options set.
  const opts = await options(`admins = { "a@example.com" }\ncopy = admins\nkind = type(admins)\nVirtualHost "h.example"\nx = 1\ny = x`, "h.example");
  assert.equal(opts, { defined: true, x: 1 });
  const global = await options(`admins = { "a" }\ncopy = admins\nkind = type(admins)`);
  assert.equal(global, { admins: ["a"], kind: "nil" });
});

sandbox("unknown names fall back to a read-only view of safe standard library globals", async () => {
  const opts = await options([
    `s = string.format("%s-%03d", "id", 7)`,
    `u = ("abc"):upper() .. ("%dd"):format(3)`,
    `j = table.concat({ "a", "b" }, ",")`,
    `m = math.max(3, 9) + math.floor(2.7)`,
    `n = tonumber("42") + select("#", 1, 2, 3)`,
    `t = tostring(12) .. type({})`,
    `ok = pcall(error, "x") == false`,
    `asserted = assert(1 == 1 and "yes")`,
    `now = type(os.time()) .. "/" .. type(os.date("%Y"))`,
    `local n2 = 0 for _, v in ipairs({ 5, 6 }) do n2 = n2 + v end for k in pairs({ a = 1 }) do n2 = n2 + #k end`,
    `sum = n2`,
    `version = _VERSION`,
    `g = _G.string == string`,
  ].join("\n"));
  assert.equal(opts, {
    asserted: "yes", g: true, j: "a,b", m: 11, n: 45, now: "number/string", ok: true, s: "id-007", sum: 12,
    t: "12table", u: "ABC3d", version: "Lua 5.3",
  });
});

sandbox("ENV_NAME and os.getenv read the given environment, else nil", async () => {
  const env = { CHAT_DOMAIN: "chat.example", EMPTY: "" };
  const opts = await options(`a = ENV_CHAT_DOMAIN\nb = ENV_EMPTY\nc = ENV_NOT_SET\nd = os.getenv("CHAT_DOMAIN")\ne = type(ENV_NOT_SET)`, "*", { env });
  assert.equal(opts, { a: "chat.example", b: "", d: "chat.example", e: "nil" });
});

sandbox("ENV_ defaults to process.env", async () => {
  process.env.PROSODY_TS_CONFIG_TEST = "from-process";
  try {
    assert.equal(await options(`a = ENV_PROSODY_TS_CONFIG_TEST`), { a: "from-process" });
  } finally {
    delete process.env.PROSODY_TS_CONFIG_TEST;
  }
});

sandbox("0.13's FileContents, FileLine, FileLines and Credential do not exist", async () => {
  assert.equal(await options(`a = type(FileContents)\nb = type(FileLine)\nc = type(FileLines)\nd = type(Credential)`), {
    a: "nil", b: "nil", c: "nil", d: "nil",
  });
});

sandbox("print goes to the print option, or nowhere", async () => {
  const lines: string[] = [];
  await load(`print("hello", 1, nil, true)\nx = 1`, { print: (l) => lines.push(l) });
  assert.equal(lines, ["hello\t1\tnil\ttrue"]);
  assert.equal(await options(`print("ignored")\nx = 1`), { x: 1 });
});

sandbox("pcall can make an Include optional", async () => {
  assert.equal(await options(`ok = pcall(Include, "does-not-exist.cfg.lua")\nafter = 1`), { after: 1, ok: false });
});

sandbox("assigning nil removes an option", async () => {
  assert.equal(await options(`a = 1\nb = 2\na = nil`), { b: 2 });
});

sandbox.run();

const values = suite("core/config: values");

values("strings, numbers and booleans convert to JS values", async () => {
  assert.equal(await options(`s = "x"\ni = 42\nf = 2.5\nwhole = 4.0\nneg = -3\nhex = 0x10\nexp = 1e3\nb = true\nno = false`), {
    b: true, exp: 1000, f: 2.5, hex: 16, i: 42, neg: -3, no: false, s: "x", whole: 4,
  });
});

values("a 1..n sequence becomes an array, an empty table [], anything else an object", async () => {
  assert.equal(await options([
    `list = { "a", "b", { 1, 2 } }`,
    `empty = {}`,
    `explicit = { [1] = "x", [2] = "y" }`,
    `sparse = { [1] = "x", [3] = "z" }`,
    `zero = { [0] = "z" }`,
    `mixed = { "first", key = "v" }`,
    `numeric = { [10] = "ten", [2.5] = "float" }`,
    `nested = { a = { b = { c = { "deep" } } } }`,
  ].join("\n")), {
    empty: [],
    explicit: ["x", "y"],
    list: ["a", "b", [1, 2]],
    mixed: { 1: "first", key: "v" },
    nested: { a: { b: { c: ["deep"] } } },
    numeric: { 10: "ten", "2.5": "float" },
    sparse: { 1: "x", 3: "z" },
    zero: { 0: "z" },
  });
});

values("object keys come out sorted, whatever Lua's hash order", async () => {
  const opts = await options(`t = { zeta = 1, alpha = 2, [3] = "c", mid = 3, [1] = "a" }`);
  assert.equal(Object.keys(opts!.t as object), ["1", "3", "alpha", "mid", "zeta"]);
  const keys = Object.keys((await options(`z = 1\na = 2\nm = 3`))!);
  assert.equal(keys, ["a", "m", "z"]);
});

values("a key named __proto__ stays an ordinary property", async () => {
  const opts = await options(`t = { __proto__ = "x" }`);
  const t = opts!.t as Record<string, unknown>;
  assert.is(Object.getPrototypeOf(t), Object.prototype);
  assert.equal(Object.keys(t), ["__proto__"]);
  assert.is(t["__proto__"], "x");
});

values("functions are skipped with a warning, also inside tables", async () => {
  const config = await load(`f = function() end\nt = { keep = 1, drop = print, list = { "a", type } }\nVirtualHost "h.example"\ng = tostring`);
  assert.equal(config.sections.get("*")!.options, { t: { keep: 1, list: ["a"] } });
  assert.equal(config.sections.get("h.example")!.options, { defined: true });
  assert.equal(config.warnings, [
    `/srv/chat/prosody.cfg.lua: option 'f' in section "*" is a function value, which a config option cannot hold; ignored`,
    `/srv/chat/prosody.cfg.lua: option 't.drop' in section "*" is a function value, which a config option cannot hold; ignored`,
    `/srv/chat/prosody.cfg.lua: option 't.list[2]' in section "*" is a function value, which a config option cannot hold; ignored`,
    `/srv/chat/prosody.cfg.lua: option 'g' in section "h.example" is a function value, which a config option cannot hold; ignored`,
  ]);
});

values("a table that contains itself is cut with a warning", async () => {
  const config = await load(`local t = { name = "loop" }\nt.self = t\nloop = t`);
  assert.equal(config.sections.get("*")!.options, { loop: { name: "loop" } });
  assert.equal(config.warnings, [`/srv/chat/prosody.cfg.lua: option 'loop.self' in section "*" contains itself; the inner reference is ignored`]);
});

values("a table is converted after the file ran, so later changes to it count (as in Prosody)", async () => {
  assert.equal(await options(`local mods = { "a" }\nmodules_enabled = mods\nmods[#mods + 1] = "b"`), { modules_enabled: ["a", "b"] });
});

values("COMPAT: fengari's integers are 32-bit, so integer products past 2^31 wrap (floats do not)", async () => {
  // Prosody (Lua 5.4) gives 4294967296 for `a`; the workaround is a float operand or `^`.
  assert.equal(await options(`a = 1024 * 1024 * 1024 * 4\nb = 1024.0 * 1024 * 1024 * 4\nc = 2^32\nd = 3000000000`), {
    a: 0, b: 4294967296, c: 4294967296, d: 3000000000,
  });
});

values("non-ASCII text round-trips", async () => {
  assert.equal(await options(`motd = "Grüße ☺ \\u{1F600}"\nlocal x = "é" k = #x`), { k: 2, motd: "Grüße ☺ 😀" });
});

values.run();

const duplicates = suite("core/config: duplicate options");

duplicates("warn with file and line, and the last value wins", async () => {
  const config = await load(`a = 1\nb = 1\na = 2\na = 3`);
  assert.equal(config.sections.get("*")!.options, { a: 3, b: 1 });
  assert.equal(config.warnings, [
    "/srv/chat/prosody.cfg.lua:3: Duplicate option 'a'",
    "/srv/chat/prosody.cfg.lua:4: Duplicate option 'a'",
  ]);
});

duplicates("the line is the last line of the assigned value, as Lua reports it", async () => {
  const config = await load(`a = {\n"x",\n"y"\n}\na = {\n"z"\n}\nb = 1\nb =\n  2\nc = 1\nc = "p" ..\n "q"`);
  assert.equal(config.warnings, [
    "/srv/chat/prosody.cfg.lua:7: Duplicate option 'a'",
    "/srv/chat/prosody.cfg.lua:10: Duplicate option 'b'",
    "/srv/chat/prosody.cfg.lua:13: Duplicate option 'c'",
  ]);
});

duplicates("are per section; coming back to a section still counts", async () => {
  const config = await load(`x = 1\nVirtualHost "a.example"\nx = 2\nVirtualHost "b.example"\nx = 3\nVirtualHost "a.example"\nx = 4`);
  assert.equal(config.warnings, ["/srv/chat/prosody.cfg.lua:7: Duplicate option 'x'"]);
  assert.is(config.getRaw("a.example", "x"), 4);
});

duplicates("table forms and section statements never warn (as in Prosody)", async () => {
  const config = await load(`VirtualHost "a.example" { x = 1 }\nVirtualHost "a.example" { x = 2 }\nVirtualHost "a.example"\nx = 3\ndefined = true`);
  assert.equal(config.warnings, []);
  assert.is(config.getRaw("a.example", "x"), 3);
});

duplicates.run();

const include = suite("core/config: Include");

include("is relative to the including file; an included file starts in the global section", async () => {
  const config = await loadConfigFile(fixture("declarative", "main.cfg.lua"));
  assert.is(config.getRaw("*", "extra_option"), "from extra");
  assert.is(config.getRaw("chat.example.org", "from_extra"), true);
  assert.is(config.getRaw("*", "burst"), 1, "set by the included file, after main.cfg.lua's own value");
});

include("a glob in the last component includes every matching non-dot file, sorted", async () => {
  const config = await loadConfigFile(fixture("declarative", "main.cfg.lua"));
  const hosts = config.hosts();
  assert.equal(hosts.slice(-2), ["first.example.org", "second.example.org"]);
  assert.not.ok(hosts.includes("hidden.example.org"), "dot files are skipped");
  assert.is(config.sections.get("first.example.org")!.file, fixture("declarative", "conf.d", "10-first.cfg.lua"));
  assert.is(config.getRaw("*", "glob_order"), 20);
  // Duplicates are counted per file, as in Prosody.
  assert.ok(config.warnings.includes(`${fixture("declarative", "conf.d", "20-second.cfg.lua")}:4: Duplicate option 'glob_order'`));
  assert.not.ok(config.warnings.some((w) => w.includes("extra.cfg.lua")));
});

include("a glob matching nothing includes nothing; Include works from loadConfigString", async () => {
  const config = await loadConfigString(`Include "conf.d/*.none"\nInclude "extra.cfg.lua"`, fixture("declarative", "virtual.cfg.lua"));
  assert.is(config.getRaw("*", "extra_option"), "from extra");
});

include("an included file includes relative to its own directory; absolute paths work", async () => {
  const nested = await loadConfigString(`Include "declarative/nested/inner.cfg.lua"`, fixture("virtual.cfg.lua"));
  assert.is(nested.getRaw("*", "inner"), true);
  assert.is(nested.getRaw("*", "extra_option"), "from extra");
  const abs = fixture("declarative", "extra.cfg.lua");
  const config = await load(`Include ${JSON.stringify(abs)}`);
  assert.is(config.getRaw("*", "extra_option"), "from extra");
});

include.run();

const lookups = suite("core/config: Config lookups");

lookups("get falls back to the global value; getRaw does not; unknown hosts get global values", async () => {
  const config = await load(`storage = "sql"\nlist = { "g" }\nVirtualHost "a.example"\nlist = { "h" }\nVirtualHost "b.example"`);
  assert.equal(config.get("a.example", "list"), ["h"], "host value replaces (no merge)");
  assert.is(config.get("a.example", "storage"), "sql");
  assert.is(config.getRaw("a.example", "storage"), undefined);
  assert.is(config.get("nowhere.example", "storage"), "sql");
  assert.is(config.getRaw("nowhere.example", "storage"), undefined);
  assert.is(config.get("*", "storage"), "sql");
  assert.is(config.get("a.example", "missing"), undefined);
  assert.is(config.get("a.example", "constructor"), undefined, "no prototype leaks");
});

lookups("isEnabled is enabled ~= false, with the global fallback", async () => {
  const config = await load(`VirtualHost "on.example"\nVirtualHost "off.example"\nenabled = false\nComponent "svc.example" "muc"\nenabled = false`);
  assert.is(config.isEnabled("on.example"), true);
  assert.is(config.isEnabled("off.example"), false);
  assert.is(config.isEnabled("svc.example"), false);
  assert.equal(config.hosts(), ["on.example", "off.example", "svc.example"], "disabled hosts are still listed");
  const allOff = await load(`enabled = false\nVirtualHost "a.example"\nVirtualHost "b.example" { enabled = true }`);
  assert.is(allOff.isEnabled("a.example"), false);
  assert.is(allOff.isEnabled("b.example"), true);
});

lookups("Config records file and source", async () => {
  const config = await loadConfigFile(fixture("declarative", "extra.cfg.lua"));
  assert.is(config.file, fixture("declarative", "extra.cfg.lua"));
  assert.is(config.source, "argument");
  assert.is(config.sections.get("*")!.file, config.file);
});

lookups.run();
