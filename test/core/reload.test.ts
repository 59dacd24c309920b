/**
 * core/reload: applying a new config to a running Runtime (in-process), the serialisation of
 * reloads, and where our pidfile is (src/cli/pidfile.ts).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigString } from "../../src/core/config/index.js";
import { applyConfig, serialized } from "../../src/core/reload.js";
import { createRuntime } from "../../src/create-runtime.js";
import { pidfilePath } from "../../src/cli/pidfile.js";
import { pluginDir } from "../helpers/plugins.js";

const PLUGINS = pluginDir({
  // Each load and unload is recorded on a global list the test reads.
  a: `export default function (m) { globalThis.__reloadLog.push("load a@" + m.host); m.onUnload(() => globalThis.__reloadLog.push("unload a@" + m.host)); }`,
  b: `export default function (m) { globalThis.__reloadLog.push("load b@" + m.host); m.onUnload(() => globalThis.__reloadLog.push("unload b@" + m.host)); }`,
});

declare global {
  // eslint-disable-next-line no-var
  var __reloadLog: string[];
}

function cfg(text: string) {
  return loadConfigString(`plugin_paths = { ${JSON.stringify(PLUGINS)} }\ndefault_storage = "memory"\n${text}`, "/tmp/reload-test.cfg.lua");
}

test("applyConfig loads added modules, unloads removed ones, reloads reload_modules, follows hosts", async () => {
  globalThis.__reloadLog = [];
  const rt = createRuntime({ config: await cfg(`modules_enabled = { "a" }\nVirtualHost "one.example"\nVirtualHost "two.example"`), processType: "server" });
  const events: string[] = [];
  rt.globalEvents.hook("host-deactivated", (h: string) => void events.push(`deactivated ${h}`));
  await rt.start();
  assert.equal(globalThis.__reloadLog, ["load a@one.example", "load a@two.example"]);
  globalThis.__reloadLog = [];

  const next = await cfg(`modules_enabled = { "b" }\nhttp_ports = { 1 }\nprosody_ts_admin_socket = "other.sock"\nVirtualHost "one.example"\nreload_modules = { "b" }\nVirtualHost "three.example"`);
  const summary = await applyConfig(rt, next);
  assert.is(rt.config, next);
  assert.equal(summary.hostsRemoved, ["two.example"]);
  assert.equal(summary.hostsAdded, ["three.example"]);
  assert.equal(summary.unloaded, ["one.example:a"]);
  assert.equal(summary.loaded, ["one.example:b"]);
  assert.equal(summary.reloaded, [], "b was not loaded before: loading it is enough");
  assert.equal(summary.restartOnly, ["http_ports", "prosody_ts_admin_socket"]);
  assert.equal(events, ["deactivated two.example"]);
  assert.equal(rt.activeHosts().sort(), ["one.example", "three.example"]);
  assert.ok(globalThis.__reloadLog.includes("unload a@two.example"));
  assert.ok(globalThis.__reloadLog.includes("unload a@one.example"));
  assert.ok(globalThis.__reloadLog.includes("load b@three.example"));
  assert.not.ok(rt.modules.isLoaded("one.example", "a"));

  // The same file again: b is in reload_modules on one.example, so it is reloaded there only.
  globalThis.__reloadLog = [];
  const again = await applyConfig(rt, await cfg(`modules_enabled = { "b" }\nhttp_ports = { 1 }\nprosody_ts_admin_socket = "other.sock"\nVirtualHost "one.example"\nreload_modules = { "b" }\nVirtualHost "three.example"`));
  assert.equal(again.reloaded, ["one.example:b"]);
  assert.equal(again.loaded, []);
  assert.equal(again.restartOnly, []);
  assert.equal(globalThis.__reloadLog, ["unload b@one.example", "load b@one.example"]);
  await rt.stop();
});

test("serialized: one run at a time; calls during a run share one more run", async () => {
  let running = 0;
  let runs = 0;
  let overlap = false;
  const gates: Array<() => void> = [];
  const q = serialized(async () => {
    running++;
    runs++;
    if (running > 1) overlap = true;
    await new Promise<void>((r) => gates.push(r));
    running--;
  });
  const first = q.run();
  const burst = [q.run(), q.run(), q.run()];
  assert.is(runs, 1);
  gates.shift()!();
  await first;
  await new Promise((r) => setImmediate(r));
  assert.is(runs, 2, "the burst became one more run");
  gates.shift()!();
  await Promise.all(burst);
  await q.idle();
  assert.is(runs, 2);
  assert.not.ok(overlap);
  const later = q.run();
  assert.is(runs, 3, "a call after the queue emptied runs at once");
  gates.shift()!();
  await later;
});

test("pidfile: ours is derived from `pidfile` (-ts before the extension), prosody_ts_pidfile wins, relative under data", async () => {
  const path = async (text: string) => pidfilePath(await loadConfigString(text, "/tmp/x.cfg.lua"), "/var/lib/prosody");
  assert.equal(await path(`pidfile = "/run/prosody/prosody.pid"`), { path: "/run/prosody/prosody-ts.pid", derived: true });
  assert.equal(await path(`pidfile = "run/server"`), { path: "/var/lib/prosody/run/server-ts", derived: true });
  assert.equal(await path(`pidfile = "/run/prosody/prosody.pid"\nprosody_ts_pidfile = "/run/prosody-ts/ts.pid"`), { path: "/run/prosody-ts/ts.pid" });
  assert.equal(await path(`prosody_ts_pidfile = "ts.pid"`), { path: "/var/lib/prosody/ts.pid" });
  assert.equal(await path(``), { error: "no-pidfile" });
  assert.equal(await path(`pidfile = 12`), { error: "invalid-pidfile" });
  assert.equal(await path(`pidfile = "/run/p.pid"\nmodules_disabled = { "posix" }`), { error: "no-posix" });
});

test.run();
