/** config.files: every file a config was read from, so a root process can check each (issue 11 item 5). */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { embeddedDefaultConfig, loadConfigFile } from "../../src/core/config/index.js";

function tree(main: string): { dir: string; main: string } {
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-files-"));
  mkdirSync(join(dir, "conf.d"));
  writeFileSync(join(dir, "conf.d", "b.cfg.lua"), `b = 2\nInclude "../deep.cfg.lua"\n`);
  writeFileSync(join(dir, "conf.d", "a.cfg.lua"), `a = 1\n`);
  writeFileSync(join(dir, "deep.cfg.lua"), `deep = true\n`);
  writeFileSync(join(dir, "prosody.cfg.lua"), main);
  return { dir, main: join(dir, "prosody.cfg.lua") };
}

test("the main file, then each Include in the order read, once each (declarative fast path)", async () => {
  const { dir, main } = tree(`x = 1\nInclude "conf.d/*.cfg.lua"\nInclude "deep.cfg.lua"\n`);
  const config = await loadConfigFile(main);
  assert.is(config.get("*", "deep"), true);
  assert.equal(config.files, [main, join(dir, "conf.d/a.cfg.lua"), join(dir, "conf.d/b.cfg.lua"), join(dir, "deep.cfg.lua")]);
});

test("the same list when the config needs the Lua VM", async () => {
  const { dir, main } = tree(`local n = 1\nx = n + 1\nif n == 1 then Include "conf.d/*.cfg.lua" end\ninclude("deep.cfg.lua")\n`);
  const config = await loadConfigFile(main);
  assert.is(config.get("*", "x"), 2);
  assert.equal(config.files, [main, join(dir, "conf.d/a.cfg.lua"), join(dir, "conf.d/b.cfg.lua"), join(dir, "deep.cfg.lua")]);
});

test("the embedded default reads no file", () => {
  assert.equal(embeddedDefaultConfig("/x").files, []);
});

test.run();
