/**
 * util.interpolation (src/util/interpolation.ts): every operator and edge case, then the same
 * corpus rendered by Prosody's own util/interpolation.lua (when lua5.4 and Prosody are installed)
 * and compared output for output.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  createHtmlRenderer,
  createRenderer,
  createUrlRenderer,
  luaToString,
  urlencode,
  xmlEscape,
} from "../../src/util/interpolation.js";
import { skip } from "../helpers/skip.js";

const BASE = "http://example.com:5280/invites_page";
const html = createHtmlRenderer({ baseUrl: BASE });
const url = createUrlRenderer();
const plain = createRenderer();

test("names: escaped value, raw with !, nested lookup, literal key with a dot", () => {
  assert.is(html("<p>{x}</p>", { x: `<a href="x">'&'</a>` }), "<p>&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;</p>");
  assert.is(html("{x!}", { x: "<b>" }), "<b>");
  assert.is(html("{a.b.c}", { a: { b: { c: "deep" } } }), "deep");
  assert.is(html("{a.b}", { "a.b": "literal", a: { b: "nested" } }), "literal");
  assert.is(html("{a.b}", { "a.b": false, a: { b: "nested" } }), "nested", "a false literal key falls back to the path");
  assert.is(html("{a.}", { a: "trailing dot walks to a" }), "trailing dot walks to a");
  assert.is(html("{a..b}", { a: { b: "empty words are skipped" } }), "empty words are skipped");
  assert.is(html("{_x1}", { _x1: "underscore" }), "underscore");
});

test("a missing value without an operator leaves the block as it is", () => {
  assert.is(html("a {missing} b", {}), "a {missing} b");
  assert.is(html("{missing!}", {}), "{missing!}");
  assert.is(html("{a.b.c}", { a: { b: {} } }), "{a.b.c}");
  assert.is(html("{a.b}", { a: "a string has no fields" }), "{a.b}");
  assert.is(html("{x:y}", {}), "{x:y}", "unknown operator with nil value");
  assert.is(html("{app.name} {app.text}", { app: undefined }), "{app.name} {app.text}");
  assert.is(html("{x}", { x: null }), "{x}", "null is nil");
  // the block is kept whole: inner blocks are not rendered either
  assert.is(html("{missing{x}}", { x: "X" }), "{missing{x}}");
});

test("text that is not a block: bad names, unbalanced and empty braces", () => {
  const v = { x: "X" };
  assert.is(html("{ x}", v), "{ x}");
  assert.is(html("{1x}", v), "{1x}");
  assert.is(html("{}", v), "{}");
  assert.is(html("{-x}", v), "{-x}");
  assert.is(html("{x", v), "{x");
  assert.is(html("x}", v), "x}");
  assert.is(html("{{x}", v), "{X", "an unbalanced { is text, the next one opens a block");
  assert.is(html("}{x}{", v), "}X{");
  assert.is(html("{{x}}", v), "{{x}}", "outer block's name is not a name");
  assert.is(html("a{x}b{x}c", v), "aXbXc");
});

test("whatever follows the name (and one punctuation mark) is ignored when there is a value", () => {
  assert.is(html("{x y z}", { x: "X" }), "X");
  assert.is(html("{x:fallback}", { x: "X" }), "X");
  assert.is(html("{x!!}", { x: "<" }), "<");
  assert.is(html("{x{y}}", { x: "X", y: "Y" }), "X");
  assert.is(html("{x-}", { x: "X" }), "X");
});

test("values are Lua-stringified: numbers, booleans; never re-interpolated", () => {
  assert.is(html("{n}", { n: 42 }), "42");
  assert.is(html("{n}", { n: -7 }), "-7");
  assert.is(html("{n}", { n: 1.5 }), "1.5");
  assert.is(html("{n}", { n: 0.1 + 0.2 }), "0.3");
  assert.is(html("{n}", { n: 1e20 }), "1e+20");
  assert.is(html("{n}", { n: 1e-5 }), "1e-05");
  assert.is(html("{n}", { n: 0.0001 }), "0.0001");
  assert.is(html("{n}", { n: 123456789012345.6 }), "1.2345678901235e+14");
  assert.is(html("{n}", { n: 2 ** 53 }), "9007199254740992");
  assert.is(html("{t} {f}", { t: true, f: false }), "true false", "false is a value (only nil stays literal)");
  assert.is(html("{x}", { x: "{y}", y: "no" }), "{y}");
  assert.is(luaToString(Infinity), "inf");
  assert.is(luaToString(-Infinity), "-inf");
});

test("? default: for nil and false only; the default is a template; {x?} is empty", () => {
  assert.is(html("{x?none}", {}), "none");
  assert.is(html("{x?none}", { x: false }), "none");
  assert.is(html("{x?none}", { x: "" }), "", "an empty string is true in Lua");
  assert.is(html("{x?none}", { x: 0 }), "0", "0 is true in Lua");
  assert.is(html("{x?}", {}), "");
  assert.is(html("{x?<{y}>}", { y: "&" }), "<&amp;>");
  assert.is(html("{x?d}", { x: "<v>" }), "&lt;v&gt;");
  assert.is(html("{x!?d}", { x: "<v>" }), "<v>");
  assert.is(html("{a.b?deflt}", { a: {} }), "deflt");
  assert.is(html("{item.proceed_url?#}", { item: {} }), "#");
});

test("& then / ~ else", () => {
  assert.is(html("{x&yes {x}}", { x: "X" }), "yes X");
  assert.is(html("{x&yes}", {}), "");
  assert.is(html("{x&yes}", { x: false }), "");
  assert.is(html("{x&yes}", { x: "" }), "yes");
  assert.is(html("{x&yes}", { x: 0 }), "yes");
  assert.is(html("{x~no}", {}), "no");
  assert.is(html("{x~no}", { x: false }), "no");
  assert.is(html("{x~no}", { x: "X" }), "");
  assert.is(html("{x~no {y}}", { y: "<" }), "no &lt;");
  assert.is(
    html("You have been invited {inviter&by {inviter} }to {site}", { inviter: "alice", site: "example.com" }),
    "You have been invited by alice to example.com",
  );
  assert.is(html("You have been invited {inviter&by {inviter} }to {site}", { site: "example.com" }), "You have been invited to example.com");
});

test("# loops over arrays with 1-based {idx} and {item}; outer values stay visible", () => {
  assert.is(html("{l#[{idx}:{item}]}", { l: ["a", "<"] }), "[1:a][2:&lt;]");
  assert.is(html("{l#{p}{item.name};}", { p: ">", l: [{ name: "x" }, { name: "y" }] }), "&gt;x;&gt;y;");
  assert.is(html("{l#x}", { l: [] }), "");
  assert.is(html("{l#x}", {}), "", "nil renders nothing (not literal)");
  assert.is(html("{l#x}", { l: "string" }), "", "a non-table renders nothing");
  assert.is(html("{l#x}", { l: 5 }), "");
  assert.is(html("{l#{item}}", { l: ["a", null, "c"] }), "a", "ipairs stops at the first nil");
  assert.is(html("{l#{item}}", { l: { x: 1 } }), "", "a map has no sequence part");
  assert.is(html("{l#{item}}", { l: { 1: "one", 2: "two", 4: "four" } }), "onetwo", "integer-like keys of a table");
  // nested: the inner item shadows the outer one; idx is the innermost
  assert.is(
    html("{apps#<{item.name}:{item.platforms# p-{item|lower|classname}}>}", {
      apps: [{ name: "Gajim", platforms: ["Windows", "Linux"] }, { name: "X", platforms: ["Windows Phone"] }],
    }),
    "<Gajim: p-windows p-linux><X: p-windows-phone>",
  );
  assert.is(html("{a#{b#{idx}{item}}|}", { a: [1, 2], b: ["x"] }), "1x|1x|");
  assert.is(html("{l#{idx}}", { l: [false, true] }), "12", "false is an element");
  assert.is(html("{l#{item}}", { l: [false] }), "false");
  assert.is(html("{l#{item}}", { item: "outer", l: [false] }), "false", "a false item does not fall through to the outer one");
});

test("% loops over maps with {idx} = key", () => {
  assert.is(html("{m%{idx}={item};}", { m: { a: "1", b: "<" } }), "a=1;b=&lt;;");
  assert.is(html("{m%{idx}={item};}", { m: new Map([["k", "v"]]) }), "k=v;");
  assert.is(html("{m%{idx}={item};}", { m: ["x", "y"] }), "1=x;2=y;");
  assert.is(html("{m%x}", { m: "str" }), "");
  assert.is(html("{m%x}", {}), "");
});

test("| filters, in order; unknown filters are skipped; nil stays literal", () => {
  assert.is(html("{x|lower}", { x: "AbC" }), "abc");
  assert.is(html("{x|lower|classname}", { x: "Windows Phone" }), "windows-phone");
  assert.is(html("{x|classname}", { x: "a..b  c!" }), "a-b-c-");
  assert.is(html("{x|classname}", { x: "café au lait" }), "caf-au-lait", "non-ASCII is not alphanumeric");
  assert.is(html("{x|lower}", { x: "ÄB" }), "Äb", "only ASCII is lower-cased");
  assert.is(html("{x|urlescape}", { x: "a b&c" }), "a%20b%26c");
  assert.is(html("{x|nosuch}", { x: "<" }), "&lt;");
  assert.is(html("{x|nosuch|lower}", { x: "AB" }), "ab");
  assert.is(html("{x|lower}", {}), "{x|lower}");
  assert.is(html("{x|}", { x: "<" }), "&lt;", "an empty filter name ends the chain");
  assert.is(html("{x|1}", { x: "<" }), "&lt;");
  assert.is(html("{x|lower!}", { x: "<A>" }), "<a>", "! after a filter makes it raw");
  assert.is(html("{x!|lower}", { x: "<A>" }), "&lt;a&gt;", "each filter resets the raw flag");
  assert.is(html("{x|lower?def}", {}), "def");
  assert.is(html("{x|lower&yes}", { x: "A" }), "yes");
  assert.is(html("{x|constructor}", { x: "A" }), "A", "only own filters");
  // without filters, | is just punctuation
  assert.is(plain("{x|lower}", { x: "AB" }), "AB");
  // filters see false (not nil)
  const r = createRenderer({ filters: { f: (v) => `<${String(v)}>` } });
  assert.is(r("{x|f}", { x: false }), "<false>");
  assert.is(r("{x|f}", {}), "{x|f}");
});

test("relurl: absolute URLs (scheme://) pass, others are made absolute against base_url", () => {
  assert.is(html("{i|relurl}", { i: "assets/logo.svg" }), `${BASE}/assets/logo.svg`);
  assert.is(html("{i|relurl}", { i: "https://cdn.example/x.png" }), "https://cdn.example/x.png");
  assert.is(html("{i|relurl}", { i: "data:image/png;base64,AA" }), `${BASE}/data:image/png;base64,AA`, "as Prosody: only scheme:// is absolute");
  assert.is(createHtmlRenderer()("{i|relurl}", { i: "x.png" }), "x.png", "no base: unchanged");
});

test("URL renderer: urlencode with lower-case hex, noscheme", () => {
  assert.is(url("{x}", { x: "xmpp:example.com?register;preauth=Ab_-.~9" }), "xmpp%3aexample.com%3fregister%3bpreauth%3dAb_-.~9");
  assert.is(url("{x!}", { x: "a b" }), "a b");
  assert.is(url("{x|noscheme}", { x: "xmpp:alice@example.com?roster" }), "alice%40example.com%3froster");
  assert.is(url("{x|noscheme!}", { x: "xmpp:a:b" }), "a:b", "only the first scheme");
  assert.is(url("{x|noscheme!}", { x: ":x" }), ":x");
  assert.is(url("{x|urlescape!}", { x: "é/" }), "%c3%a9%2f");
  assert.is(
    url("{app.link!}&referrer={invite.uri}", {
      app: { link: "https://play.google.com/store/apps/details?id=eu.siacs.conversations" },
      invite: { uri: "xmpp:alice@example.com?register;preauth=2OT5153ltPNq5ZfrQ_cx2IVt" },
    }),
    "https://play.google.com/store/apps/details?id=eu.siacs.conversations&referrer=xmpp%3aalice%40example.com%3fregister%3bpreauth%3d2OT5153ltPNq5ZfrQ_cx2IVt",
  );
  assert.is(url("https://{host}/{invite.token}", { host: "example.com", invite: { token: "a+b" } }), "https://example.com/a%2bb");
  assert.is(urlencode("AZaz09.~_- !*'()"), "AZaz09.~_-%20%21%2a%27%28%29");
  assert.is(xmlEscape(`&<>"'`), "&amp;&lt;&gt;&quot;&apos;");
});

test("values are tables: Maps work, prototype properties are not values", () => {
  assert.is(html("{m.k}", { m: new Map([["k", "v"]]) }), "v");
  assert.is(html("{constructor} {toString} {x.constructor}", { x: {} }), "{constructor} {toString} {x.constructor}");
  assert.is(html("{l.1}", { l: ["a"] }), "{l.1}", "a path word is a string key, not an array index");
  assert.is(html("{l.length}", { l: ["a"] }), "{l.length}");
  assert.is(html("{x}", new Map([["x", "from a map"]])), "from a map");
  assert.is(html("no blocks at all", undefined), "no blocks at all");
});

test("a long template with many unbalanced braces renders (no catastrophic slowdown)", () => {
  const t = "{".repeat(2000) + "{x}" + "}".repeat(10);
  const started = Date.now();
  const out = html(t, { x: "X" });
  assert.ok(Date.now() - started < 1000);
  assert.ok(out.startsWith("{{{"));
});

// --- The same corpus through Prosody's util/interpolation.lua ---

const PROSODY_UTIL = "/usr/lib/prosody/util/interpolation.lua";

interface Case {
  r: "html" | "url" | "plain";
  t: string;
  v: Record<string, unknown>;
}

const CORPUS: Case[] = [];
const add = (r: Case["r"], t: string, v: Record<string, unknown> = {}) => CORPUS.push({ r, t, v });
const V = {
  x: "<&>\"'",
  s: "Plain",
  e: "",
  z: 0,
  f: false,
  t: true,
  n: 42,
  fl: 1.5,
  big: 1e20,
  tiny: 1e-5,
  a: { b: { c: "deep" }, f: false },
  "a.b": "lit",
  l: ["one", "<two>", "three"],
  objs: [{ name: "Gajim", platforms: ["Windows", "Linux"] }, { name: "Monal", platforms: ["iOS"] }],
  m: { only: "value" },
  uri: "xmpp:alice@example.com?register;preauth=2OT5153ltPNq5ZfrQ_cx2IVt",
  link: "https://play.google.com/store/apps/details?id=eu.siacs.conversations",
  img: "assets/logos/x.svg",
  abs: "https://example.net/y.png",
  u: "café au LAIT/ok",
};
for (const r of ["html", "url", "plain"] as const) {
  for (const t of [
    "{x}", "{x!}", "{s}", "{missing}", "{missing!}", "{e}", "{z}", "{f}", "{t}", "{n}", "{fl}", "{big}", "{tiny}",
    "{a.b.c}", "{a.b}", "{a.f}", "{a.f.g}", "{s.}", "{a..b.c}", "{a.missing}", "{s.missing}",
    "{x?d}", "{missing?d}", "{f?d}", "{e?d}", "{z?d}", "{missing?}", "{missing?<{s}>}", "{x!?d}",
    "{x&T{x}}", "{missing&T}", "{f&T}", "{e&T}", "{z&T}", "{x~E}", "{missing~E{x}}", "{f~E}",
    "{l#[{idx}={item}]}", "{objs#{item.name}({item.platforms#{idx}{item}})}", "{l#{s}}", "{s#x}", "{missing#x}", "{m%{idx}:{item}}", "{l%{idx}}",
    "{x|lower}", "{s|lower|classname}", "{u|classname}", "{u|lower}", "{u|urlescape}", "{x|nosuch}", "{missing|lower}", "{x|}", "{x|1}",
    "{x|lower!}", "{x!|lower}", "{missing|lower?d}", "{s|lower&T}", "{uri|noscheme}", "{uri|noscheme!}", "{img|relurl}", "{abs|relurl}",
    "{ x}", "{1x}", "{}", "{-x}", "{x", "x}", "{{x}", "}{x}{", "{{x}}", "{x y}", "{x:y}", "{missing:y}", "{x!!}", "{x{s}}", "{missing{s}}",
    "{link!}&referrer={uri}", "pre {s} mid {x} post", "{l#{l#{idx}}.}", "{objs#{item.platforms# p-{item|lower|classname}}}",
    "{x?{missing}}", "{l#{item?x}}", "{missing?{f?{s}}}", "{objs|nosuch#{item.name}}", "{a.b|nosuch.c}", "{x&}", "{missing~}", "{missing#}",
    "{n|lower}", "{z&{z}}", "{x!?}", "{a.b!c}", "{x?a}b}", "é{s}ü", "{uri|urlescape|noscheme}", "{objs#{idx}{item.name}{s}}",
    "{objs#{item.missing}}", "{objs#{item.name?}{item.nope?-}}", "{m.only}", "{m%{item|lower}}",
  ]) {
    add(r, t, V);
  }
}

const LUA_HARNESS = `
package.path = "/usr/lib/prosody/?.lua;" .. package.path
package.cpath = "/usr/lib/prosody/?.so;" .. package.cpath
local interpolation = require "util.interpolation"
local json = require "util.json"
local st = require "util.stanza"
local urlencode = require "util.http".urlencode
local base = ...
local function classname(s) return (s:gsub("%W+", "-")) end
local function relurl(s) if s:match("^%w+://") then return s end return base .. "/" .. s end
local renderers = {
  html = interpolation.new("%b{}", st.xml_escape, { urlescape = urlencode, lower = string.lower, classname = classname, relurl = relurl }),
  url = interpolation.new("%b{}", urlencode, { urlescape = urlencode, noscheme = function (s) return (s:gsub("^[^:]+:", "")) end }),
  plain = interpolation.new("%b{}", function (s) return s end),
}
local out = {}
for i, c in ipairs(json.decode(io.read("a"))) do
  local ok, res = pcall(renderers[c.r], c.t, c.v)
  out[i] = ok and res or ("ERROR: " .. tostring(res))
end
io.write(json.encode(out))
`;

test("every corpus case renders exactly as Prosody's util/interpolation.lua does", (ctx) => {
  const lua = spawnSync("lua5.4", ["-v"]);
  if (lua.error || !existsSync(PROSODY_UTIL)) return skip(ctx, "lua5.4 and Prosody's util/interpolation.lua are needed for the cross-check");
  const dir = mkdtempSync(join(tmpdir(), "interp-"));
  writeFileSync(join(dir, "h.lua"), LUA_HARNESS);
  const run = spawnSync("lua5.4", [join(dir, "h.lua"), BASE], { input: JSON.stringify(CORPUS), encoding: "utf8" });
  assert.is(run.status, 0, run.stderr);
  const theirs = JSON.parse(run.stdout) as string[];
  assert.is(theirs.length, CORPUS.length);
  const ours = { html, url, plain };
  let compared = 0;
  CORPUS.forEach((c, i) => {
    assert.not.match(theirs[i]!, /^ERROR/, `${c.r} ${c.t}: Lua failed`);
    // Lua's tostring() of a table is an address: documented as not reproducible.
    if (/table: 0x/.test(theirs[i]!)) return;
    assert.is(ours[c.r](c.t, c.v), theirs[i], `${c.r} renderer, template ${JSON.stringify(c.t)}`);
    compared++;
  });
  assert.ok(compared > 200);
});

test.run();
