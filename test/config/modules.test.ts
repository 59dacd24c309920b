/** modulesForHost: Prosody's get_modules_for_host (spec §1.3). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { AUTOLOAD_MODULES, loadConfigString, modulesForHost } from "../../src/core/config/index.js";

const load = (text: string) => loadConfigString(text, "/srv/chat/prosody.cfg.lua");
const sorted = (list: Iterable<string>) => [...list].sort();

const modules = suite("core/config: modulesForHost");

modules("a host gets autoload ∪ global modules_enabled − global modules_disabled", async () => {
  const config = await load(`modules_enabled = { "roster", "invites", "roster" }\nmodules_disabled = { "offline", "invites" }\nVirtualHost "a.example"`);
  const { modules: list, autoloaded } = modulesForHost(config, "a.example");
  assert.equal(sorted(list), sorted([...AUTOLOAD_MODULES.filter((m) => m !== "offline"), "roster"]));
  assert.equal(sorted(autoloaded), sorted(AUTOLOAD_MODULES.filter((m) => m !== "offline")));
});

modules("a host's own modules_enabled adds to the global list, its modules_disabled removes", async () => {
  const config = await load([
    `modules_enabled = { "roster", "mam", "posix" }`,
    `VirtualHost "a.example"`,
    `  modules_enabled = { "invites", "roster" }`,
    `  modules_disabled = { "mam", "c2s" }`,
    `VirtualHost "b.example"`,
  ].join("\n"));
  const a = modulesForHost(config, "a.example");
  assert.ok(a.modules.includes("invites") && a.modules.includes("roster"));
  assert.not.ok(a.modules.includes("mam"));
  assert.not.ok(a.modules.includes("c2s"));
  assert.not.ok(a.autoloaded.has("posix"), "posix was asked for by modules_enabled");
  assert.ok(a.autoloaded.has("presence"));
  const b = modulesForHost(config, "b.example");
  assert.ok(b.modules.includes("mam"));
  assert.not.ok(b.modules.includes("invites"), "only the host that set it gets it");
  assert.equal(b.modules.slice(0, AUTOLOAD_MODULES.length), AUTOLOAD_MODULES, "autoload first, then config order");
});

modules("a host's modules_enabled can re-add a globally disabled module", async () => {
  const config = await load(`modules_disabled = { "offline" }\nVirtualHost "a.example"\nmodules_enabled = { "offline" }`);
  assert.ok(modulesForHost(config, "a.example").modules.includes("offline"));
});

modules("components load their module first and inherit only a few global modules", async () => {
  const config = await load([
    `modules_enabled = { "roster", "saslauth", "tls", "smacks", "invites", "server_contact_info" }`,
    `Component "rooms.example" "muc"`,
    `  modules_enabled = { "muc_mam" }`,
    `Component "ext.example"`,
  ].join("\n"));
  const rooms = modulesForHost(config, "rooms.example");
  assert.is(rooms.modules[0], "muc");
  assert.equal(sorted(rooms.modules), sorted(["muc", "iq", "s2s", "saslauth", "tls", "smacks", "server_contact_info", "muc_mam"]));
  assert.equal(sorted(rooms.autoloaded), ["iq", "s2s"]);
  const ext = modulesForHost(config, "ext.example");
  assert.is(ext.modules[0], "component");
  assert.not.ok(ext.modules.includes("roster"));
});

modules("vcard is dropped when vcard_legacy is also enabled", async () => {
  const config = await load(`modules_enabled = { "vcard", "vcard_legacy" }\nVirtualHost "a.example"\nVirtualHost "b.example"\nmodules_disabled = { "vcard_legacy" }`);
  const a = modulesForHost(config, "a.example").modules;
  assert.ok(a.includes("vcard_legacy"));
  assert.not.ok(a.includes("vcard"));
  assert.ok(modulesForHost(config, "b.example").modules.includes("vcard"));
});

modules("disabled hosts and unknown hosts get the global set; non-string entries are ignored", async () => {
  const config = await load(`modules_enabled = { "roster", 5, { "x" } }\nVirtualHost "off.example"\nenabled = false`);
  assert.ok(modulesForHost(config, "off.example").modules.includes("roster"));
  assert.equal(modulesForHost(config, "unknown.example").modules, [...AUTOLOAD_MODULES, "roster"]);
  assert.equal(modulesForHost(config, "*").modules, [...AUTOLOAD_MODULES, "roster"]);
});

modules.run();
