/**
 * Compares our evaluation with the real Prosody 0.12 configmanager, when Prosody and lua5.4
 * are installed (Debian: apt install prosody), through _dump-prosody-config.lua.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ConfigError, loadConfigFile } from "../../src/core/config/index.js";
import { FIXTURES } from "./_helpers.js";
import { skip } from "../helpers/skip.js";

const PROSODY_LUA = "/usr/lib/prosody";
const DUMPER = fileURLToPath(new URL("./_dump-prosody-config.lua", import.meta.url));
const lua = spawnSync("lua5.4", ["-v"], { encoding: "utf8" });
const available = lua.status === 0 && existsSync(join(PROSODY_LUA, "core", "configmanager.lua"));

interface Ctx { dir: string; root: string }
const cross = suite<Ctx>("core/config: same result as Prosody's configmanager", { dir: "", root: "" });

cross.before((ctx) => {
  if (!available) return;
  // Prosody's duplicate-option warning needs the path to fit Lua's 60-character chunk ids.
  ctx.dir = mkdtempSync("/tmp/pc-");
  ctx.root = join(ctx.dir, "f");
  symlinkSync(FIXTURES, ctx.root);
});
cross.after((ctx) => {
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

type Dump = { error?: string; sections?: Record<string, unknown>; warnings?: string[] };

function prosody(file: string, env: Record<string, string>): Dump {
  const out = spawnSync("lua5.4", [DUMPER, PROSODY_LUA, file], { encoding: "utf8", env: { PATH: process.env.PATH, ...env } });
  assert.is(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as Dump;
}

async function ours(file: string, env: Record<string, string>): Promise<Dump> {
  try {
    const config = await loadConfigFile(file, { env });
    const sections = Object.fromEntries([...config.sections].map(([name, s]) => [name, s.options]));
    return { sections, warnings: config.warnings };
  } catch (err) {
    if (err instanceof ConfigError) return { error: err.message };
    throw err;
  }
}

async function compare(file: string, env: Record<string, string> = {}) {
  const theirs = prosody(file, env);
  const mine = await ours(file, env);
  assert.equal(mine, theirs, file);
}

const unavailable = available ? undefined : "lua5.4 or Prosody's Lua sources not found (install the prosody package)";

cross("the declarative fixture (fast path)", async (ctx) => {
  const { root } = ctx;
  if (unavailable) return skip(ctx, unavailable);
  await compare(join(root, "declarative", "main.cfg.lua"));
});

cross("the Snikket-style fixture (Lua VM), with and without its environment", async (ctx) => {
  const { root } = ctx;
  if (unavailable) return skip(ctx, unavailable);
  const file = join(root, "snikket-style.cfg.lua");
  await compare(file, { SNIKKET_DOMAIN: "Chat.Example.COM", SNIKKET_RETENTION_DAYS: "30", SNIKKET_ADMIN_EMAIL: "ops@example.com" });
  await compare(file, { SNIKKET_DOMAIN: "a.example", SNIKKET_OPEN_REGISTRATION: "1" });
  await compare(file, {});
  await compare(file, { SNIKKET_DOMAIN: "a.example", SNIKKET_TWEAK_TURN: "1" });
});

cross("errors that carry a position read the same", async (ctx) => {
  const { root } = ctx;
  if (unavailable) return skip(ctx, unavailable);
  for (const name of ["syntax-error", "include-syntax", "include-runtime"]) {
    await compare(join(root, "errors", `${name}.cfg.lua`));
  }
});

cross("snippets: table forms, components, reads of options, duplicates, mixed tables", async (ctx) => {
  const { dir } = ctx;
  if (unavailable) return skip(ctx, unavailable);
  const snippets = [
    `VirtualHost "A.example" { x = 1 }\ny = 2\nComponent "c.example" "muc" { z = { 1, 2 } }\nw = admins`,
    `admins = { "a" }\ncopy = admins\nkind = type(admins)\nVirtualHost "h.example"\nx = 1\nx = 2\nVirtualHost "i.example"\nVirtualHost "h.example"\nx = {\n1\n}`,
    `t = { "a", k = "v", [3] = "c", n = { [1] = "x", [2] = "y" } }\nComponent "ext.example"\ncomponent "lower.example" "proxy65"`,
    `local parts = {}\nfor i = 1, 3 do parts[#parts + 1] = ("p%d"):format(i) end\nlist = parts\ns = table.concat(parts, "+")\nn = math.floor(7 / 2)`,
    `x = 1\nVirtualHost "a.example" "muc"`,
    `x = 1\n\nlocal y = nil + 1`,
  ];
  for (const [i, text] of snippets.entries()) {
    const file = join(dir, `s${i}.cfg.lua`);
    writeFileSync(file, text);
    const theirs = prosody(file, {});
    const mine = await ours(file, {});
    if (theirs.error && mine.error) {
      // Same position; our wording may differ (e.g. the VirtualHost module message).
      assert.is(mine.error.split(": ")[0], theirs.error.split(": ")[0], text);
    } else {
      assert.equal(mine, theirs, text);
    }
  }
});

cross("Debian's stock config", async (ctx) => {
  if (unavailable) return skip(ctx, unavailable);
  if (!existsSync("/etc/prosody/prosody.cfg.lua")) return skip(ctx, "/etc/prosody/prosody.cfg.lua not found (install the prosody package)");
  await compare("/etc/prosody/prosody.cfg.lua");
});

cross.run();
