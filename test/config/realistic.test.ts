/** Two realistic configs: Debian's stock prosody.cfg.lua and a Snikket-style one. */
import { existsSync } from "node:fs";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile, modulesForHost } from "../../src/core/config/index.js";
import { skip } from "../helpers/skip.js";
import { fixture, rejects } from "./_helpers.js";

const debian = suite("core/config: Debian's stock config");
const DEBIAN = "/etc/prosody/prosody.cfg.lua";

debian("loads with the facts true of Debian's file", async (ctx) => {
  if (!existsSync(DEBIAN)) return skip(ctx, `${DEBIAN} not found (install the prosody package)`);
  const config = await loadConfigFile(DEBIAN);
  assert.equal(config.warnings, []);
  assert.ok(config.hosts().includes("localhost"));
  const localhost = config.sections.get("localhost")!;
  assert.is(localhost.kind, "VirtualHost");
  assert.is(localhost.file, DEBIAN, "declared in the main file first (conf.d repeats it)");
  const enabled = config.get("*", "modules_enabled") as string[];
  for (const m of ["roster", "saslauth", "tls", "disco", "invites", "invites_register", "posix"]) {
    assert.ok(enabled.includes(m), `modules_enabled has ${m}`);
  }
  assert.equal(config.get("localhost", "modules_disabled"), []);
  assert.is(config.get("localhost", "authentication"), "internal_hashed");
  assert.is(config.get("*", "pidfile"), "/run/prosody/prosody.pid");
  assert.is(config.get("*", "s2s_secure_auth"), true);
  assert.equal(config.get("*", "admins"), []);
  assert.equal(config.get("*", "limits"), { c2s: { rate: "10kb/s" }, s2sin: { rate: "30kb/s" } });
  const log = config.get("*", "log") as Record<string, unknown>;
  assert.is(log.info, "/var/log/prosody/prosody.log");
  assert.equal(log["1"], { levels: ["error"], to: "syslog" }, "the positional sink of a mixed table is key \"1\"");
  assert.is(config.isEnabled("localhost"), true);
  const { modules, autoloaded } = modulesForHost(config, "localhost");
  assert.ok(modules.includes("roster") && modules.includes("c2s") && modules.includes("vcard_legacy"));
  assert.ok(autoloaded.has("c2s"));
  assert.not.ok(autoloaded.has("posix"), "Debian lists posix explicitly");
});

debian.run();

const snikket = suite("core/config: Snikket-style config");
const SNIKKET = fixture("snikket-style.cfg.lua");

snikket("evaluates its Lua against the environment", async () => {
  const env = { SNIKKET_DOMAIN: "Chat.Example.COM", SNIKKET_RETENTION_DAYS: "30", SNIKKET_ADMIN_EMAIL: "ops@example.com" };
  const config = await loadConfigFile(SNIKKET, { env });
  assert.equal(config.hosts(), ["chat.example.com", "groups.chat.example.com", "share.chat.example.com", "proxy.chat.example.com"]);
  assert.is(config.get("*", "archive_expires_after"), "30d");
  assert.is(config.get("*", "http_file_share_expires_after"), 30 * 86400);
  assert.is(config.get("*", "http_file_share_size_limit"), 16 * 1024 * 1024, "tonumber(unset) or 16");
  assert.equal(config.get("*", "http_ports"), [5280]);
  assert.is(config.get("*", "admin_email"), "ops@example.com");
  assert.is(config.get("*", "site_name"), "Chat.Example.COM");
  assert.is(config.get("*", "invites_page"), "https://Chat.Example.COM/invite/{invite.token}/");
  assert.is(config.get("*", "welcome_message"), "Welcome to Chat.Example.COM!\n\nThis server is run by ops@example.com.");
  assert.equal(config.get("*", "ssl"), {
    certificate: "/etc/snikket-style/certs/Chat.Example.COM/fullchain.pem",
    key: "/etc/snikket-style/certs/Chat.Example.COM/privkey.pem",
  });
  assert.is(config.getRaw("*", "DOMAIN"), undefined, "locals are not options");

  const host = config.sections.get("chat.example.com")!;
  assert.equal(host.options, {
    authentication: "internal_hashed", defined: true, http_host: "Chat.Example.COM", registration_invite_only: true,
  });
  assert.is(host.line, 46);
  assert.is(config.getRaw("groups.chat.example.com", "component_module"), "muc");
  assert.is(config.sections.get("groups.chat.example.com")!.line, 55);
  assert.equal(modulesForHost(config, "groups.chat.example.com").modules[0], "muc");
  assert.is(config.getRaw("share.chat.example.com", "http_host"), "share.Chat.Example.COM");

  // From the glob Include (snikket-style.d/*.cfg.lua; the dot file is skipped).
  assert.is(config.get("*", "c2s_stanza_size_limit"), 262144);
  assert.equal(config.get("*", "limits"), { c2s: { rate: "10kb/s" } });
  assert.equal(config.get("*", "extra_modules"), []);
  const proxy = config.sections.get("proxy.chat.example.com")!;
  assert.is(proxy.file, fixture("snikket-style.d", "20-proxy.cfg.lua"));
  assert.is(proxy.options.proxy65_address, "Chat.Example.COM");
  assert.equal(config.warnings, [`${fixture("snikket-style.d", "10-tuning.cfg.lua")}:7: Duplicate option 'extra_modules'`]);
});

snikket("a conditional branch changes options", async () => {
  const config = await loadConfigFile(SNIKKET, { env: { SNIKKET_DOMAIN: "a.example", SNIKKET_OPEN_REGISTRATION: "1", SNIKKET_HTTP_PORT: "8080" } });
  assert.is(config.getRaw("a.example", "allow_registration"), true);
  assert.is(config.getRaw("a.example", "registration_invite_only"), undefined);
  assert.equal(config.get("*", "http_ports"), [8080]);
  assert.is(config.get("*", "archive_expires_after"), "7d", "tonumber(unset) or 7");
});

snikket("without SNIKKET_DOMAIN the assert stops it with its message", async () => {
  const err = await rejects(loadConfigFile(SNIKKET, { env: {} }), `${SNIKKET}:4: Please set SNIKKET_DOMAIN`);
  assert.is(err.line, 4);
});

snikket("reading an option back gives nil, so appending to modules_enabled fails (as in Prosody)", async () => {
  await rejects(
    loadConfigFile(SNIKKET, { env: { SNIKKET_DOMAIN: "a.example", SNIKKET_TWEAK_TURN: "1" } }),
    `${SNIKKET}:24: attempt to get length of a nil value (global 'modules_enabled')`,
  );
});

snikket.run();
