import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ModuleLoadError } from "../../src/core/modulemanager.js";
import { createRuntime } from "../../src/create-runtime.js";
import type { Module } from "../../src/core/types.js";
import { makeConfig } from "../helpers/config.js";
import { captureLogs } from "../helpers/logs.js";
import { pluginDir } from "../helpers/plugins.js";

const PLUGINS = pluginDir({
  counter: `
    let loads = 0;
    export default function (module) {
      loads++;
      module.exports.host = module.host;
      module.exports.loads = () => loads;
      module.hook("ping", (data) => { data.seen.push(module.host); });
      module.hookGlobal("global-ping", (data) => { data.seen.push("global:" + module.host); });
    }`,
  user: `
    export default async function (module) {
      const counter = await module.depends("counter");
      module.exports.counter = counter;
    }`,
  needs_disabled: `
    export default async function (module) { await module.depends("off"); }`,
  needs_missing: `
    export default async function (module) { await module.depends("no_such_module"); }`,
  off: `export default function () {}`,
  provider: `
    export default function (module) {
      module.provides("widget", { colour: "red" });
      module.provides("auth", { name: "custom" });
      module.addItem("thing", "a");
    }`,
  storage_thing: `
    export default function (module) { module.provides("storage", { open() { return undefined; } }); }`,
  watcher: `
    export default function (module) {
      module.exports.added = [];
      module.exports.removed = [];
      module.handleItems("thing", (e) => module.exports.added.push(e.item), (e) => module.exports.removed.push(e.item));
    }`,
  globalish: `
    let addHostCalls = [];
    export default function (module) {
      module.setGlobal();
      module.exports.calls = addHostCalls;
      module.addHost = (m) => { addHostCalls.push({ host: m.host, global: m.global }); m.hook("ping", (d) => { d.seen.push("wrapped:" + m.host); }); };
    }`,
  refuses: `
    export default function (module) { module.setGlobal(); module.addHost = () => false; }`,
  broken: `
    export default function () { throw new Error("boom in body"); }`,
  timers: `
    export default function (module) {
      module.exports.fired = 0;
      module.addTimer(0.01, () => { module.exports.fired++; return 0.01; });
    }`,
  command_only: `
    export function command(args) { return args.length; }`,
  async_veto: `
    export default function (module) {
      module.hook("check", async (e) => { await new Promise((r) => setTimeout(r, 5)); e.allowed = false; });
      module.hookGlobal("global-check", async () => { await new Promise((r) => setTimeout(r, 5)); return "global answer"; });
    }`,
  routes_no_http: `
    export default function (module) { module.provides("http", { route: { "GET /": () => "hi" } }); }`,
  routes_with_http: `
    export default async function (module) { await module.depends("http"); module.provides("http", { route: { "GET /": () => "hi" } }); }`,
  body_and_command: `
    export default function (module) { module.exports.bodyRan = true; }
    export function command(args, ctx) { ctx.module.hook("from-command", () => undefined); return 0; }`,
  cleanup: `
    export default function (module) {
      const log = (module.exports.log = []);
      module.hook("still-hooked", () => { log.push("hook seen"); });
      module.provides("widget", { colour: "blue" });
      module.onUnload(() => { log.push("first"); });
      module.onUnload(async () => { await new Promise((r) => setTimeout(r, 5)); log.push("second (async)"); });
      module.onUnload(() => { throw new Error("cleanup failed"); });
      module.onUnload(() => {
        // Runs before the module's own hooks and items are released.
        module.fireEvent("still-hooked");
        log.push("items " + module.getHostItems("widget-provider").length);
      });
      module.unload = () => { log.push("module.unload"); };
    }`,
});

function runtime(global: Record<string, any> = {}, hosts: Record<string, any> = { "a.example": {}, "b.example": {} }) {
  return createRuntime({
    config: makeConfig({ plugin_paths: [PLUGINS], storage: "memory", ...global }, hosts),
    processType: "server",
  });
}

test("a module is loaded per host, each with its own instance and host bus", async () => {
  const rt = runtime();
  const a = await rt.modules.load("a.example", "counter");
  const b = await rt.modules.load("b.example", "counter");
  assert.is.not(a, b);
  assert.is(a.host, "a.example");
  assert.is(a.exports.host, "a.example");
  assert.is(b.exports.host, "b.example");
  const data = { seen: [] as string[] };
  rt.eventsFor("a.example").fire("ping", data);
  assert.equal(data.seen, ["a.example"]);
  const g = { seen: [] as string[] };
  rt.globalEvents.fire("global-ping", g);
  assert.equal(g.seen.sort(), ["global:a.example", "global:b.example"]);
});

test("loading twice on one host fails with module-already-loaded; unknown host with unknown-host", async () => {
  const rt = runtime();
  await rt.modules.load("a.example", "off");
  const e1 = await rt.modules.load("a.example", "off").catch((e) => e);
  assert.instance(e1, ModuleLoadError);
  assert.is(e1.code, "module-already-loaded");
  const e2 = await rt.modules.load("nope.example", "off").catch((e) => e);
  assert.is(e2.code, "unknown-host");
});

test("module-loaded fires on the host bus with module and host", async () => {
  const rt = runtime();
  const seen: unknown[] = [];
  rt.eventsFor("a.example").hook("module-loaded", (e) => void seen.push(e));
  await rt.modules.load("a.example", "off");
  assert.equal(seen, [{ module: "off", host: "a.example" }]);
});

test("depends loads the dependency on the same host and returns its one exports object", async () => {
  const rt = runtime();
  const user = await rt.modules.load("a.example", "user");
  const counter = rt.modules.get("a.example", "counter")!;
  assert.ok(counter, "dependency loaded");
  assert.is(user.exports.counter, counter.exports);
  const other = await rt.modules.load("a.example", "watcher");
  assert.is(await other.depends("counter"), counter.exports);
});

test("depends on a disabled module throws 'Dependency on disabled module mod_<name>'", async () => {
  for (const [global, host] of [[{ modules_disabled: ["off"] }, {}], [{}, { modules_disabled: ["off"] }]]) {
    const rt = runtime(global, { "a.example": host });
    const err = await rt.modules.load("a.example", "needs_disabled").catch((e) => e);
    assert.instance(err, ModuleLoadError);
    assert.match(err.message, "Dependency on disabled module mod_off");
    assert.is(rt.modules.isLoaded("a.example", "needs_disabled"), false);
  }
});

test("depends on a missing module throws Prosody's 'Unable to load required module' message", async () => {
  const logs = captureLogs();
  try {
    const rt = runtime();
    const err = await rt.modules.load("a.example", "needs_missing").catch((e) => e);
    assert.match(err.message, /^Unable to load required module, mod_no_such_module: /);
  } finally {
    logs.restore();
  }
});

test("unloading a dependency unloads its dependents", async () => {
  const rt = runtime();
  await rt.modules.load("a.example", "user");
  await rt.modules.unload("a.example", "counter");
  await new Promise((r) => setTimeout(r, 10));
  assert.is(rt.modules.isLoaded("a.example", "user"), false);
});

test("provides names items after the module (kind prefix stripped) and marks the provider", async () => {
  const rt = runtime();
  const p = await rt.modules.load("a.example", "provider");
  const widgets = p.getHostItems("widget-provider");
  assert.equal(widgets, [{ colour: "red", name: "provider", _provided_by: "provider" }]);
  assert.is(p.getHostItems("auth-provider")[0].name, "custom");
  const s = await rt.modules.load("a.example", "storage_thing");
  assert.is(s.getHostItems("storage-provider")[0].name, "thing");
  // provides without an item: a copy of the exports
  const bare = await rt.modules.load("b.example", "counter");
  bare.provides("metric");
  assert.is(bare.getHostItems("metric-provider")[0].host, "b.example");
});

test("handleItems sees existing items, later additions and removals (on unload too)", async () => {
  const rt = runtime();
  const provider = await rt.modules.load("a.example", "provider");
  const watcher = await rt.modules.load("a.example", "watcher");
  assert.equal(watcher.exports.added, ["a"]);
  provider.addItem("thing", "b");
  provider.removeItem("thing", "a");
  assert.equal(watcher.exports.added, ["a", "b"]);
  assert.equal(watcher.exports.removed, ["a"]);
  await rt.modules.unload("a.example", "provider");
  assert.equal(watcher.exports.removed, ["a", "b"]);
  assert.equal(watcher.getHostItems("thing"), []);
  // items on another host are not visible
  await rt.modules.load("b.example", "provider");
  assert.equal(watcher.getHostItems("thing"), []);
});

test("unload releases every hook, item and timer the module registered", async () => {
  const rt = runtime();
  const m = await rt.modules.load("a.example", "counter");
  const extra = m.hook("custom", () => 1);
  assert.is(rt.eventsFor("a.example").count("ping"), 1);
  assert.is(rt.globalEvents.count("global-ping"), 1);
  const unloaded: unknown[] = [];
  rt.eventsFor("a.example").hook("module-unloaded", (e) => void unloaded.push(e));
  assert.ok(await rt.modules.unload("a.example", "counter"));
  assert.is(rt.eventsFor("a.example").count("ping"), 0);
  assert.is(rt.globalEvents.count("global-ping"), 0);
  assert.is(rt.eventsFor("a.example").count("custom"), 0);
  extra(); // harmless after unload
  assert.equal(unloaded, [{ module: "counter", host: "a.example" }]);
  const t = await rt.modules.load("a.example", "timers");
  await new Promise((r) => setTimeout(r, 50));
  const fired = t.exports.fired;
  assert.ok(fired >= 1, "repeating timer ran");
  await rt.modules.unload("a.example", "timers");
  await new Promise((r) => setTimeout(r, 50));
  assert.is(t.exports.fired, fired, "timer stopped on unload");
});

test("onUnload functions run after module.unload, last first, before hooks and items go; one failing does not stop the others", async () => {
  const rt = runtime();
  const logs = captureLogs();
  try {
    const m = await rt.modules.load("a.example", "cleanup");
    const log = m.exports.log as string[];
    assert.ok(await rt.modules.unload("a.example", "cleanup"));
    assert.equal(log, ["module.unload", "hook seen", "items 1", "second (async)", "first"]);
    assert.ok(logs.messages("warn").some((l) => l.includes("cleanup failed")), "the failure is logged");
    assert.equal(rt.modules.hostItems("a.example", "widget-provider"), []);
    assert.throws(() => m.onUnload("nope" as unknown as () => void), /onUnload: expected a function/);
  } finally {
    logs.restore();
  }
});

test("module.fireEventAsync / fireGlobalEventAsync await handlers on the module's host bus and the global bus", async () => {
  const rt = runtime();
  const m = await rt.modules.load("a.example", "async_veto");
  const event = { allowed: true };
  assert.is(await m.fireEventAsync("check", event), undefined);
  assert.is(event.allowed, false);
  const other = { allowed: true };
  await (await rt.modules.load("b.example", "off")).fireEventAsync("check", other);
  assert.is(other.allowed, true, "another host's bus");
  assert.is(await m.fireGlobalEventAsync("global-check"), "global answer");
});

test("an HTTP app provided on a host without mod_http is reported once start-up is over, not when mod_http loads later", async () => {
  const logs = captureLogs();
  try {
    const noHttp = (m: string) => m.startsWith('module.provides("http", …) has no effect: mod_http is not loaded on');
    const rt = runtime({ http_ports: [], modules_enabled: ["routes_no_http"] }, { "a.example": { modules_enabled: ["http"] }, "b.example": {} });
    await rt.start();
    const warned = logs.records.filter((r) => r.level === "warn" && noHttp(r.message));
    assert.equal(
      warned.map((r) => [r.source, r.message]),
      [["b.example:routes_no_http", 'module.provides("http", …) has no effect: mod_http is not loaded on b.example (add `await module.depends("http")` to this module, or "http" to modules_enabled)']],
      "a.example loads mod_http after the module: its routes are served, no warning",
    );
    // Loaded after start-up: reported as it loads; with depends("http"): nothing to report.
    await rt.modules.unload("b.example", "routes_no_http");
    await rt.modules.load("b.example", "routes_no_http");
    await rt.modules.load("b.example", "routes_with_http");
    assert.is(logs.records.filter((r) => r.level === "warn" && noHttp(r.message)).length, 2);
    await rt.stop();

    // prosodyctl serves no HTTP at all: nothing to report there.
    const ctl = createRuntime({ config: makeConfig({ plugin_paths: [PLUGINS], storage: "memory" }, { "a.example": {} }), processType: "prosodyctl" });
    await ctl.modules.load("a.example", "routes_no_http");
    assert.is(logs.records.filter((r) => r.level === "warn" && noHttp(r.message)).length, 2);
  } finally {
    logs.restore();
  }
});

test("what a module registered is kept in the manager's record, not in public fields of the module object", async () => {
  const rt = runtime();
  const m = await rt.modules.load("a.example", "provider");
  for (const field of ["items", "hooks", "timers", "dependencies", "loaded", "explicitGlobal"]) {
    assert.is((m as unknown as Record<string, unknown>)[field], undefined, field);
  }
  assert.equal(m.getHostItems("thing"), ["a"]);
});

test("a global module with addHost serves many hosts through per-host wrappers", async () => {
  const rt = runtime();
  const wa = await rt.modules.load("a.example", "globalish");
  const wb = await rt.modules.load("b.example", "globalish");
  const g = rt.modules.get("*", "globalish")!;
  assert.ok(g, "global instance registered on *");
  assert.is(g.global, true);
  assert.is(g.host, "*");
  assert.equal(g.exports.calls, [
    { host: "a.example", global: false },
    { host: "b.example", global: false },
  ]);
  assert.is(wa.exports, g.exports);
  assert.is(wb.host, "b.example");
  const d = { seen: [] as string[] };
  rt.eventsFor("b.example").fire("ping", d);
  assert.equal(d.seen, ["wrapped:b.example"]);
  // depends from another module on a host gets the shared exports
  const user = await rt.modules.load("a.example", "counter");
  assert.is(await user.depends("globalish"), g.exports);
  // unloading the global module detaches every host
  await rt.modules.unload("*", "globalish");
  assert.is(rt.modules.isLoaded("b.example", "globalish"), false);
  assert.is(rt.eventsFor("b.example").count("ping"), 0);
});

test("addHost returning false refuses the host; a throwing body removes the module", async () => {
  const logs = captureLogs();
  try {
    const rt = runtime();
    const e1 = await rt.modules.load("a.example", "refuses").catch((e) => e);
    assert.is(e1.code, "module-init-failed");
    assert.is(rt.modules.isLoaded("a.example", "refuses"), false);
    const e2 = await rt.modules.load("a.example", "broken").catch((e) => e);
    assert.is(e2.code, "module-init-failed");
    assert.match(e2.message, "boom in body");
    assert.is(rt.modules.isLoaded("a.example", "broken"), false);
    assert.ok(logs.messages("error").some((m) => m.startsWith("Error initializing module 'broken' on 'a.example'")));
  } finally {
    logs.restore();
  }
});

test("shared() resolves Prosody's virtual paths and returns one table per path", async () => {
  const rt = runtime();
  const a = await rt.modules.load("a.example", "off");
  const b = await rt.modules.load("b.example", "off");
  const t = a.shared<{ n?: number }>("foo");
  t.n = 1;
  assert.is(rt.shared("/a.example/off/foo"), t);
  assert.is(a.shared("x/foo"), rt.shared("/a.example/x/foo"));
  assert.is(a.shared("a/b/c"), rt.shared("/a/b/c"));
  assert.is(a.shared("/*/sql/connections"), b.shared("/*/sql/connections"));
  assert.is.not(a.shared("foo"), b.shared("foo"));
});

test("context(host) acts for another host: options, hooks and stores", async () => {
  const rt = runtime({ colour: "global" }, { "a.example": { colour: "a" }, "b.example": { colour: "b" } });
  const a = await rt.modules.load("a.example", "off");
  assert.is(a.getOption("colour"), "a");
  const ctx: Module = a.context("b.example");
  assert.is(ctx.host, "b.example");
  assert.is(ctx.getOption("colour"), "b");
  assert.is(a.context().getOption("colour"), "global");
  assert.is(a.context().global, false);
  let hit = false;
  ctx.hook("ctx-event", () => void (hit = true));
  rt.eventsFor("b.example").fire("ctx-event");
  assert.ok(hit);
  const store = await ctx.openStore("things");
  await store.set("u", { x: 1 });
  const same = await (await rt.storage.open("b.example", "things")).get("u");
  assert.equal(same, { x: 1 });
});

test("plugin_paths are searched before built-in and bundled modules; unknown names are not found", async () => {
  const override = pluginDir({ storage_memory: `export default function (m) { m.exports.mine = true; m.provides("storage", { name: "memory", open() {} }); }` });
  const rt = runtime({ plugin_paths: [override, PLUGINS] });
  const m = await rt.modules.load("a.example", "storage_memory");
  assert.ok(m.exports.mine, "plugin_paths copy won");
  assert.match(m.path, override);
  const e = await rt.modules.load("a.example", "definitely_not_here").catch((x) => x);
  assert.is(e.code, "module-not-found");
  const e2 = await rt.modules.load("a.example", "../etc/passwd").catch((x) => x);
  assert.is(e2.code, "module-not-found");
});

test("a plugin exporting only a command loads and keeps the command", async () => {
  const rt = createRuntime({ config: makeConfig({ plugin_paths: [PLUGINS] }), processType: "prosodyctl" });
  const m = await rt.modules.load("*", "command_only");
  assert.is(typeof m.command, "function");
  assert.is(m.global, true);
});

test("forCommand: a plugin exporting command gets a module for \"*\" whose body does not run, not registered as loaded; stop releases it", async () => {
  const rt = createRuntime({ config: makeConfig({ plugin_paths: [PLUGINS], storage: "memory" }), processType: "prosodyctl" });
  const m = await rt.modules.forCommand("body_and_command");
  assert.is(m.host, "*");
  assert.is(m.global, true);
  assert.is(m.exports.bodyRan, undefined, "the body did not run");
  assert.is(rt.modules.isLoaded("*", "body_and_command"), false);
  assert.is(await m.command!([], { module: m, print: () => undefined }), 0);
  assert.is(rt.globalEvents.count("from-command"), 1);
  // A real load elsewhere is not confused with the command's module.
  assert.is((await rt.modules.load("*", "body_and_command")).exports.bodyRan, true);
  await rt.stop();
  assert.is(rt.globalEvents.count("from-command"), 0, "released by stop");
  const e = await rt.modules.forCommand("definitely_not_here").catch((x: unknown) => x);
  assert.is((e as ModuleLoadError).code, "module-not-found");
});

test("start-up loads each host's modules and skips unimplemented ones: Prosody's in one info line, a typo in one warning, each at debug", async () => {
  const logs = captureLogs();
  // Prosody's modules as Lua files in a plugin_paths folder (where Prosody looks too), so the
  // result does not depend on whether Prosody is installed here.
  const lua = mkdtempSync(join(tmpdir(), "prosody-lua-"));
  for (const name of ["roster", "saslauth"]) writeFileSync(join(lua, `mod_${name}.lua`), "-- Prosody's\n");
  try {
    const rt = runtime(
      { plugin_paths: [PLUGINS, lua], modules_enabled: ["roster", "saslauth", "counter", "c2s_fake_one"] },
      { "a.example": { modules_enabled: ["provider"] }, "b.example": {} },
    );
    await rt.start();
    assert.ok(rt.modules.isLoaded("a.example", "counter"));
    assert.ok(rt.modules.isLoaded("a.example", "provider"), "host modules_enabled adds to the global list");
    assert.ok(rt.modules.isLoaded("b.example", "counter"));
    assert.is(rt.modules.isLoaded("b.example", "provider"), false);
    // Issue 13: a stock config lists two dozen XMPP modules; one summary line, not one warning each.
    assert.equal(logs.messages("warn").filter((m) => m.includes("not implemented") || m.includes("typo")), [
      "Enabled but neither this host nor Prosody has them (a typo?): mod_c2s_fake_one",
    ]);
    assert.equal(logs.messages("info").filter((m) => m.includes("not implement")), [
      "Skipped 2 module(s) this host does not implement (XMPP modules stay with Prosody): roster, saslauth",
    ]);
    assert.equal(logs.messages("debug").filter((m) => m.includes("not implemented")).sort(), [
      "Module 'c2s_fake_one' is not implemented by this host, skipping it",
      "Module 'roster' is not implemented by this host, skipping it",
      "Module 'saslauth' is not implemented by this host, skipping it",
    ]);
    await rt.stop();
    assert.is(rt.modules.all().length, 0);
  } finally {
    logs.restore();
  }
});

test("start refuses a config with no enabled VirtualHost", async () => {
  const rt = runtime({}, { "a.example": { enabled: false } });
  const err = await rt.start().catch((e) => e);
  assert.match(err.message, "No enabled VirtualHost entries found in the config file.");
});

test.run();
