/**
 * `prosodyctl check` as a spawned process: the parts that are ours (modules, paths, the dispatch
 * and the XMPP-only checks said plainly). Prosody's `check config` / `check disabled` wording is
 * compared with real prosodyctl in test/interop/check-config.test.ts.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { makeCert, opensslMissing } from "../helpers/certs.js";
import { skip } from "../helpers/skip.js";

const HOST = `VirtualHost "example.com"\n`;
const check = (config: string, ...what: string[]) => prosodyctl(["--config", config, "check", ...what]);

test("check modules: what each host serves; an unknown module is a problem (exit 2)", async () => {
  const { config } = tempConfig(`data_path = "$DIR/data"\nmodules_enabled = { "invites", "invites_apii", "http" }\n${HOST}`);
  const r = await check(config, "modules");
  assert.is(r.code, 2, r.stdout + r.stderr);
  const lines = r.stdout.split("\n");
  assert.is(lines[0], "Checking modules...");
  assert.ok(lines.includes("    example.com: serves invites, http"), r.stdout);
  assert.match(r.stdout, "    Unknown module 'invites_apii' on example.com: neither this host nor Prosody has mod_invites_apii\n");
  assert.match(r.stdout, /Done\.\n\nProblems found, see above\.\n$/);
});

test("check modules: Prosody's XMPP modules are left to it, not problems", async (ctx) => {
  if (!existsSync("/usr/lib/prosody/modules/mod_roster.lua")) return skip(ctx, "Prosody's modules are not installed (/usr/lib/prosody/modules)");
  const { config } = tempConfig(`data_path = "$DIR/data"\nmodules_enabled = { "roster", "saslauth", "invites", "invites_api", "http" }\n${HOST}`);
  const r = await check(config, "modules");
  assert.is(r.code, 0, r.stdout);
  assert.match(r.stdout, "    example.com: serves invites, invites_api, http\n");
  assert.match(r.stdout, "    Left to Prosody (XMPP modules this host does not serve): roster, saslauth\n");
  assert.match(r.stdout, /All checks passed, congratulations!\n$/);
});

test("check modules: no host with a module served here, and an authentication module we lack, are problems", async () => {
  const none = tempConfig(`data_path = "$DIR/data"\nmodules_enabled = { "http" }\n${HOST}`);
  const r1 = await check(none.config, "modules");
  assert.is(r1.code, 2);
  assert.match(r1.stdout, "No enabled host has a module this host serves: enable invites, invites_api, invites_page,");
  const ldap = tempConfig(`data_path = "$DIR/data"\nauthentication = "ldap"\nmodules_enabled = { "invites", "invites_register_web", "http" }\n${HOST}`);
  const r2 = await check(ldap.config, "modules");
  assert.is(r2.code, 2);
  assert.match(r2.stdout, `    authentication = "ldap" on example.com: this host has no mod_auth_ldap,`);
  const plain = tempConfig(`data_path = "$DIR/data"\nauthentication = "internal_plain"\nmodules_enabled = { "invites", "invites_register_web", "http" }\n${HOST}`);
  const r3 = await check(plain.config, "modules");
  assert.is(r3.code, 0, r3.stdout);
});

test("check paths: a data_path that is a file, a missing pidfile or log directory are problems", async () => {
  const { dir, config } = tempConfig(
    `data_path = "$DIR/datafile"\npidfile = "$DIR/run/prosody.pid"\nlog = { info = "$DIR/logs/prosody.log"; { levels = { "error" }; to = "syslog" }; error = "*syslog" }\nmodules_enabled = { "invites" }\n${HOST}`,
  );
  writeFileSync(join(dir, "datafile"), "");
  const r = await check(config, "paths");
  assert.is(r.code, 2);
  assert.is(
    r.stdout,
    [
      "Checking paths...",
      "",
      `    The data directory ${dir}/datafile (data_path) is not a directory.`,
      "    Accounts, invites and keys are stored there: create it, owned by the user the server runs as.",
      "",
      `    The directory of pidfile ${dir}/run/prosody.pid, ${dir}/run, does not exist.`,
      "",
      `    The directory of the log file ${dir}/logs/prosody.log, ${dir}/logs, does not exist.`,
      "Done.",
      "",
      "Problems found, see above.",
      "",
    ].join("\n"),
  );
});

test("check paths: a data directory still to be created and a missing plugin folder are notes (exit 0)", async () => {
  const { dir, config } = tempConfig(`data_path = "$DIR/data"\nplugin_paths = { "$DIR/plugins" }\npidfile = "prosody.pid"\nlog = "$DIR/prosody.log"\nmodules_enabled = { "invites" }\n${HOST}`);
  const r = await check(config, "paths");
  assert.is(r.code, 0, r.stdout);
  assert.match(r.stdout, `    The data directory ${dir}/data (data_path) does not exist yet; it is created on the first write.\n`);
  assert.match(r.stdout, `    The plugin directory ${dir}/plugins (plugin_paths) does not exist: nothing is loaded from it.\n`);
  mkdirSync(join(dir, "data"));
  const again = await check(config, "paths");
  assert.is(again.stdout, `Checking paths...\n    Data: ${dir}/data\n    The plugin directory ${dir}/plugins (plugin_paths) does not exist: nothing is loaded from it.\nDone.\n\nAll checks passed, congratulations!\n`);
});

test("check without an argument: disabled, config, modules, paths, certs in that order, one verdict", async (ctx) => {
  const noOpenssl = opensslMissing();
  if (noOpenssl) return skip(ctx, noOpenssl);
  const { dir, config } = tempConfig(`data_path = "$DIR"\nmodules_enabled = { "invites", "http" }\n${HOST}VirtualHost "off.example"\nenabled = false\n`);
  makeCert(join(dir, "certs", "example.com.crt"), join(dir, "certs", "example.com.key"), { cn: "example.com", dns: ["example.com"] });
  const r = await check(config);
  assert.is(r.code, 0, r.stdout);
  const heads = r.stdout.split("\n").filter((l) => /^(Checks will|Checking|All checks|Problems)/.test(l));
  assert.equal(heads, [
    "Checks will be skipped for these disabled hosts: off.example",
    "Checking config...",
    "Checking modules...",
    "Checking paths...",
    "Checking certificates...",
    "Checking certificate for example.com",
    "All checks passed, congratulations!",
  ]);
  assert.not.match(r.stdout, "off.example: serves");
});

test("check without an argument: a host without a certificate makes the verdict a failure (exit 2)", async () => {
  const { config } = tempConfig(`data_path = "$DIR"\nmodules_enabled = { "invites", "http" }\n${HOST}`);
  const r = await check(config);
  assert.is(r.code, 2, r.stdout);
  assert.match(r.stdout, "Checking certificate for example.com\n");
  assert.match(r.stdout, /Problems found, see above\.\n$/);
});

test("check: unknown check, help and XMPP-only checks answer plainly; check certs runs the certificate check", async () => {
  const { config } = tempConfig(`data_path = "$DIR"\nmodules_enabled = { "invites" }\n${HOST}`);
  const unknown = await check(config, "foo");
  assert.is(unknown.code, 1);
  assert.match(unknown.stdout, /^Don't know how to check 'foo'\. Try one of 'config', 'modules', 'paths', 'certs' or 'disabled'\.\n/);
  const help = await check(config, "--help");
  assert.is(help.code, 1);
  assert.match(help.stdout, " Perform basic checks on your Prosody installation\n");
  for (const what of ["dns", "turn", "connectivity"]) {
    const r = await check(config, what);
    assert.is(r.code, 0);
    assert.match(r.stdout, `Nothing to check: '${what}' concerns Prosody's XMPP service, which this host does not provide.\n`);
  }
  const certs = await check(config, "certs");
  assert.is(certs.code, 2, certs.stdout);
  assert.match(certs.stdout, /^Checking certificates\.\.\.\nChecking certificate for example\.com\n/);
});

test.run();
