/**
 * Issue 13: the system config (/etc/prosody/prosody.cfg.lua) in the search, and the Debian
 * defaults a config in the system config directory gets; every default moved by the environment.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ConfigError, findAndLoadConfig, SYSTEM_CONFIG, systemConfigPath } from "../../src/core/config/index.js";
import { dataDirOf } from "../../src/core/runtime.js";

interface Ctx { dir: string; cwd: string; etc: string; system: string }
const sys = suite<Ctx>("core/config: the system config", { dir: "", cwd: "", etc: "", system: "" });

sys.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "prosody-ts-system-"));
  ctx.cwd = join(ctx.dir, "work");
  ctx.etc = join(ctx.dir, "etc-prosody");
  mkdirSync(ctx.cwd);
  mkdirSync(ctx.etc);
  ctx.system = join(ctx.etc, "prosody.cfg.lua");
  writeFileSync(ctx.system, `which = "system"\nVirtualHost "example.com"\n`);
});
sys.after.each((ctx) => rmSync(ctx.dir, { recursive: true, force: true }));

sys("is Debian's /etc/prosody/prosody.cfg.lua unless PROSODY_TS_SYSTEM_CONFIG moves it; an empty value skips the step", () => {
  assert.is(SYSTEM_CONFIG, "/etc/prosody/prosody.cfg.lua");
  assert.is(systemConfigPath({}), "/etc/prosody/prosody.cfg.lua");
  assert.is(systemConfigPath({ PROSODY_TS_SYSTEM_CONFIG: "/srv/x.cfg.lua" }), "/srv/x.cfg.lua");
  assert.is(systemConfigPath({ PROSODY_TS_SYSTEM_CONFIG: "" }), undefined);
});

sys("comes after ./prosody.cfg.lua and before the embedded default, with Debian's data directory", async ({ cwd, system }) => {
  const env = { PROSODY_TS_SYSTEM_CONFIG: system };
  const config = await findAndLoadConfig({ cwd, env });
  assert.is(config.source, "system");
  assert.is(config.file, system);
  assert.is(config.get("*", "which"), "system");
  assert.is(dataDirOf(config, cwd), "/var/lib/prosody");
  assert.equal(config.pathDefaults?.prosodyPlugins?.path, "/usr/lib/prosody/modules");

  writeFileSync(join(cwd, "prosody.cfg.lua"), `which = "cwd"`);
  const local = await findAndLoadConfig({ cwd, env });
  assert.is(local.source, "cwd");
  assert.is(dataDirOf(local, cwd), join(cwd, "data"), "a config elsewhere keeps ./data");
  assert.is((await findAndLoadConfig({ cwd, env: { ...env, PROSODY_CONFIG: system } })).source, "PROSODY_CONFIG");
});

sys("a file in the system config directory gets Debian's defaults however it is named (--config too)", async ({ cwd, system }) => {
  const config = await findAndLoadConfig({ cwd, explicit: system, env: { PROSODY_TS_SYSTEM_CONFIG: system } });
  assert.is(config.source, "argument");
  assert.is(dataDirOf(config, cwd), "/var/lib/prosody");
  const other = join(cwd, "other.cfg.lua");
  writeFileSync(other, `VirtualHost "example.com"\n`);
  const elsewhere = await findAndLoadConfig({ cwd, explicit: other, env: { PROSODY_TS_SYSTEM_CONFIG: system } });
  assert.is(dataDirOf(elsewhere, cwd), join(cwd, "data"));
  assert.is(elsewhere.pathDefaults?.prosodyPlugins, undefined);
});

sys("a relative --config missing from the working directory is tried in the system config directory, as Prosody does", async ({ cwd, system }) => {
  const env = { PROSODY_TS_SYSTEM_CONFIG: system };
  const config = await findAndLoadConfig({ cwd, explicit: "prosody.cfg.lua", env });
  assert.is(config.file, system);
  writeFileSync(join(cwd, "prosody.cfg.lua"), `which = "cwd"`);
  assert.is((await findAndLoadConfig({ cwd, explicit: "prosody.cfg.lua", env })).file, join(cwd, "prosody.cfg.lua"), "as given first");
  const missing = await findAndLoadConfig({ cwd, explicit: "nowhere.cfg.lua", env }).catch((e: unknown) => e);
  assert.instance(missing, ConfigError);
  assert.match((missing as Error).message, `Cannot read config file ${join(cwd, "nowhere.cfg.lua")} (from --config)`);
});

sys("PROSODY_TS_DATA_DIR and PROSODY_TS_PROSODY_PLUGIN_DIR move the defaults; data_path still wins", async ({ cwd, system, dir }) => {
  const env = { PROSODY_TS_SYSTEM_CONFIG: system, PROSODY_TS_DATA_DIR: join(dir, "var"), PROSODY_TS_PROSODY_PLUGIN_DIR: "lua-mods" };
  const config = await findAndLoadConfig({ cwd, env });
  assert.is(dataDirOf(config, cwd), join(dir, "var"));
  assert.equal(config.pathDefaults?.data, { path: join(dir, "var"), origin: "$PROSODY_TS_DATA_DIR" });
  assert.equal(config.pathDefaults?.prosodyPlugins, { path: join(cwd, "lua-mods"), origin: "$PROSODY_TS_PROSODY_PLUGIN_DIR" });
  writeFileSync(system, `data_path = "${dir}/chosen"\nVirtualHost "example.com"\n`);
  assert.is(dataDirOf(await findAndLoadConfig({ cwd, env }), cwd), join(dir, "chosen"));
});

sys("embedded (--embedded-config) takes the embedded default even with a local and a system config; with --config it is refused", async ({ cwd, system }) => {
  writeFileSync(join(cwd, "prosody.cfg.lua"), `which = "cwd"`);
  const config = await findAndLoadConfig({ cwd, embedded: true, env: { PROSODY_TS_SYSTEM_CONFIG: system } });
  assert.is(config.source, "embedded-option");
  assert.is(config.file, null);
  assert.is(dataDirOf(config, cwd), join(cwd, "data"));
  const err = await findAndLoadConfig({ cwd, embedded: true, explicit: system }).catch((e: unknown) => e);
  assert.instance(err, ConfigError);
  assert.match((err as Error).message, "--config and --embedded-config");
});

sys.run();
