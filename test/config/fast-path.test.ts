/**
 * The declarative fast path must give exactly what the Lua VM gives, on every fixture it
 * accepts and on a battery of snippets; anything outside its subset must fall back.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { evaluateConfig } from "../../src/core/config/load.js";
import { skip } from "../helpers/skip.js";
import { FIXTURES } from "./_helpers.js";

const ENV = { SNIKKET_DOMAIN: "chat.example.com" };

type Outcome = { result?: unknown; error?: string };
async function run(text: string | Uint8Array, file: string, mode: "auto" | "fast" | "vm"): Promise<Outcome> {
  try {
    return { result: await evaluateConfig(text, file, { env: ENV }, mode) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Asserts both paths agree; returns whether the fast path accepted the text. */
async function agree(text: string | Uint8Array, file: string): Promise<boolean> {
  const fast = await run(text, file, "fast");
  const vm = await run(text, file, "vm");
  const auto = await run(text, file, "auto");
  assert.equal(auto, vm, `auto and vm differ for ${file}`);
  if (fast.error !== undefined) assert.unreachable(`fast path threw for ${file}: ${fast.error}`);
  if (fast.result === undefined) return false;
  assert.equal(fast.result, vm.result, `fast and vm differ for ${file}`);
  assert.is(JSON.stringify(fast.result), JSON.stringify(vm.result), `key order differs for ${file}`);
  return true;
}

function configFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return configFiles(path);
    return name.endsWith(".cfg.lua") && !name.startsWith(".") ? [path] : [];
  });
}

const fixtures = suite("core/config: fast path on fixtures");

fixtures("gives identical results on every fixture it accepts (and the VM runs the rest)", async () => {
  const accepted: string[] = [];
  for (const file of configFiles(FIXTURES)) {
    if (await agree(readFileSync(file), file)) accepted.push(file.slice(FIXTURES.length));
  }
  assert.equal(accepted.sort(), [
    "declarative/conf.d/10-first.cfg.lua",
    "declarative/conf.d/20-second.cfg.lua",
    "declarative/extra.cfg.lua",
    "declarative/main.cfg.lua",
    "declarative/nested/inner.cfg.lua",
  ]);
});

fixtures("accepts Debian's stock config", async (ctx) => {
  const debian = "/etc/prosody/prosody.cfg.lua";
  if (!existsSync(debian)) return skip(ctx, `${debian} not found (install the prosody package)`);
  assert.ok(await agree(readFileSync(debian), debian), "Debian's config is declarative");
});

fixtures.run();

const snippets = suite("core/config: fast path on snippets");
const FILE = "/srv/chat/prosody.cfg.lua";

const ACCEPTED: Record<string, string> = {
  numbers: `a = 0x7fffffff b = 1.5e-3 c = -0 d = 3. e = .25e2 f = 9007199254740993 g = 1e400 h = 0XaB i = 2147483648 j = -1E+2`,
  "negative float zero": `z = -0.0`,
  escapes: String.raw`s = "\a\b\f\n\r\t\v\\\"\'" t = '\65\066\0677' u = "\x41\u{48}\u{10FFFF}" v = "a\z
      b" w = "line\
next"`,
  "long strings": "a = [[\nfirst]] b = [==[\n\nx]]y]==] c = [[]] d = [=[a\r\nb\n\rc\rd]=]",
  comments: "--[==[ block\n]] still ]==] x = 1 ---[[ not a block\ny = 2 --[[ ]] z = 3 -- at eof",
  "CRLF line endings": "a = 1\r\nb = {\r\n 'x'\r\n}\r\na = 2\r\nb = 3\r\n",
  "LF CR line endings": "a = 1\n\rb = 2\n\ra = 3",
  "tables and separators": `t = { 1, 2; 3, } u = { a = { }, [ "b c" ] = { { } }; "pos" } v = {{"x"}} w = { true, false, -1 }`,
  "empty statements": `;; x = 1 ; ; y = 2;`,
  "call forms": `VirtualHost("a.example") VirtualHost "b.example" { x = 1 } Component ("c.example") "muc" { y = 2 } component "d.example"`,
  "duplicates across sections": `x = 1 VirtualHost "a.example" x = 2 x = 3 VirtualHost "b.example" VirtualHost "A.example" x = { \n } x = 5`,
  "keywords as string keys": `t = { ["end"] = 1, ["local"] = 2 }`,
  "non-ASCII text": `motd = "Grüße — ☺" t = { ["clé"] = "välue" }`,
  "unicode host names": `VirtualHost "ÉCOLE.example"`,
};
const FALLBACK: Record<string, string> = {
  local: `local x = 1 y = x`,
  "a name as value": `x = y`,
  concatenation: `x = "a" .. "b"`,
  "hex past 32 bits": `x = 0xffffffff`,
  "escaped high byte": String.raw`x = "\200"`,
  nil: `x = nil`,
  "nil in a table": `x = { 1, nil, 3 }`,
  "numeric key": `x = { [1] = "a" }`,
  "number-like string key": `x = { ["1"] = "b", "a" }`,
  "if statement": `if true then x = 1 end`,
  "unary on a call": `x = -tonumber("1")`,
  "length operator": `x = #"abc"`,
  _ENV: `_ENV = { }`,
  "assigning a builtin": `VirtualHost = 1 x = 2`,
  function: `f = function() end`,
  "field assignment": `local t = {} t.x = 1 x = t`,
  "hex float": `x = 0x1p4`,
  "positional options table": `VirtualHost "a.example" { "x" }`,
  "parenthesised module": `Component "c.example" ("muc")`,
  "method call": `x = ("%d"):format(1)`,
};
const ERRORS: Record<string, string> = {
  syntax: `x = = 1`,
  "forbidden host": `VirtualHost "a b"`,
  "VirtualHost module": `VirtualHost "a.example" "muc"`,
  clash: `VirtualHost "a.example"\nComponent "a.example"`,
  "missing include": `Include "missing.cfg.lua"`,
  "unterminated string": `x = "abc`,
  "unterminated long string": `x = [[abc`,
  "newline in string": `x = "a\nb"`,
  shebang: `#!/usr/bin/env lua\nx = 1`,
  bom: `\uFEFFx = 1`,
  "bad long bracket": `x = [=x]`,
  "malformed number": `x = 3abc`,
  "equality operator": `x == 1`,
};

for (const [name, text] of Object.entries(ACCEPTED)) {
  snippets(`accepts and agrees: ${name}`, async () => {
    assert.ok(await agree(text, FILE), "the fast path accepted it");
  });
}
for (const [name, text] of Object.entries(FALLBACK)) {
  snippets(`falls back to the VM: ${name}`, async () => {
    assert.not.ok(await agree(text, FILE));
    assert.is((await run(text, FILE, "vm")).error, undefined);
  });
}
for (const [name, text] of Object.entries(ERRORS)) {
  snippets(`leaves errors to the VM: ${name}`, async () => {
    assert.not.ok(await agree(text, FILE));
    assert.type((await run(text, FILE, "auto")).error, "string");
  });
}

snippets("keeps the sign of a negated float zero, not of an integer zero", async () => {
  const fast = (await evaluateConfig(`a = -0.0 b = -0`, FILE, {}, "fast"))!;
  const vm = (await evaluateConfig(`a = -0.0 b = -0`, FILE, {}, "vm"))!;
  for (const r of [fast, vm]) {
    assert.ok(Object.is(r.sections[0].options.a, -0));
    assert.ok(Object.is(r.sections[0].options.b, 0));
  }
});

snippets.run();

const lazy = suite("core/config: lazy VM");

lazy("fengari is imported only when a config needs it", () => {
  const probe = fileURLToPath(new URL("./_lazy-probe.ts", import.meta.url));
  const out = spawnSync(process.execPath, ["--import", "tsx", probe], { encoding: "utf8" });
  assert.is(out.status, 0, out.stderr);
  assert.equal(JSON.parse(out.stdout.trim()), { afterDeclarative: false, afterLua: true });
});

lazy.run();
