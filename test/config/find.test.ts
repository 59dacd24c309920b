/** Finding the config: --config, PROSODY_CONFIG, ./prosody.cfg.lua, then the embedded default. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { embeddedDefaultConfig, findAndLoadConfig, modulesForHost } from "../../src/core/config/index.js";
import { rejects } from "./_helpers.js";

interface Ctx { dir: string; cwd: string }
const find = suite<Ctx>("core/config: findAndLoadConfig", { dir: "", cwd: "" });

find.before.each((ctx) => {
  ctx.dir = mkdtempSync(join(tmpdir(), "prosody-ts-config-"));
  ctx.cwd = join(ctx.dir, "work");
  mkdirSync(ctx.cwd);
  writeFileSync(join(ctx.dir, "explicit.cfg.lua"), `which = "explicit"\nhome = ENV_HOME_FOR_TEST`);
  writeFileSync(join(ctx.dir, "from-env.cfg.lua"), `which = "PROSODY_CONFIG"`);
  writeFileSync(join(ctx.cwd, "prosody.cfg.lua"), `which = "cwd"`);
});
find.after.each((ctx) => {
  rmSync(ctx.dir, { recursive: true, force: true });
});

find("--config wins, relative to cwd, and its ENV_ reads the given env", async ({ dir, cwd }) => {
  const config = await findAndLoadConfig({
    explicit: "../explicit.cfg.lua", cwd, env: { PROSODY_CONFIG: join(dir, "from-env.cfg.lua"), HOME_FOR_TEST: "/home/t" },
  });
  assert.is(config.get("*", "which"), "explicit");
  assert.is(config.get("*", "home"), "/home/t");
  assert.is(config.source, "argument");
  assert.is(config.file, join(dir, "explicit.cfg.lua"));
});

find("a missing --config file is an error naming it, even when others exist", async ({ dir, cwd }) => {
  const missing = join(dir, "nope.cfg.lua");
  await rejects(
    findAndLoadConfig({ explicit: missing, cwd, env: { PROSODY_CONFIG: join(dir, "from-env.cfg.lua") } }),
    `Cannot read config file ${missing} (from --config): No such file or directory`,
  );
});

find("then PROSODY_CONFIG (relative to cwd)", async ({ dir, cwd }) => {
  const config = await findAndLoadConfig({ cwd, env: { PROSODY_CONFIG: "../from-env.cfg.lua" } });
  assert.is(config.get("*", "which"), "PROSODY_CONFIG");
  assert.is(config.source, "PROSODY_CONFIG");
  assert.is(config.file, join(dir, "from-env.cfg.lua"));
});

find("a missing PROSODY_CONFIG file is an error", async ({ dir, cwd }) => {
  await rejects(
    findAndLoadConfig({ cwd, env: { PROSODY_CONFIG: join(dir, "gone.cfg.lua") } }),
    `Cannot read config file ${join(dir, "gone.cfg.lua")} (from PROSODY_CONFIG): No such file or directory`,
  );
});

find("then ./prosody.cfg.lua in cwd (an empty PROSODY_CONFIG counts as unset)", async ({ cwd }) => {
  const config = await findAndLoadConfig({ cwd, env: { PROSODY_CONFIG: "" } });
  assert.is(config.get("*", "which"), "cwd");
  assert.is(config.source, "cwd");
  assert.is(config.file, join(cwd, "prosody.cfg.lua"));
});

find("then the embedded default (the system config step turned off)", async ({ dir }) => {
  const config = await findAndLoadConfig({ cwd: dir, env: { PROSODY_TS_SYSTEM_CONFIG: "" } });
  assert.is(config.source, "embedded");
  assert.is(config.file, null);
  assert.equal(config.sections, embeddedDefaultConfig(dir).sections);
  assert.equal(config.pathDefaults, { system: false, data: undefined, prosodyPlugins: undefined });
});

find.run();

const embedded = suite("core/config: embedded default");

embedded("has the documented options and a localhost VirtualHost", () => {
  const config = embeddedDefaultConfig("/srv/app");
  assert.equal(config.hosts(), ["localhost"]);
  assert.equal(config.sections.get("localhost")!.kind, "VirtualHost");
  assert.equal(config.sections.get("*")!.options, {
    data_path: "/srv/app/data",
    default_storage: "sql",
    http_interfaces: ["127.0.0.1"],
    http_ports: [5280],
    https_ports: [], // loopback HTTP only: no certificate looked for, nothing bound publicly
    modules_enabled: [
      "http", "invites", "invites_api", "invites_page", "register_apps",
      "invites_register_web", "invites_adhoc", "invites_register",
    ],
    sql: { database: "prosody.sqlite", driver: "SQLite3" },
    storage: "sql",
  });
  assert.is(config.get("localhost", "storage"), "sql");
  assert.is(config.isEnabled("localhost"), true);
  assert.equal(config.warnings, []);
  const { modules } = modulesForHost(config, "localhost");
  assert.ok(modules.includes("invites_api") && modules.includes("c2s"));
});

embedded("each call returns an independent object", () => {
  const a = embeddedDefaultConfig("/a");
  (a.sections.get("*")!.options.modules_enabled as string[]).push("x");
  assert.not.ok((embeddedDefaultConfig("/a").get("*", "modules_enabled") as string[]).includes("x"));
});

embedded.run();
