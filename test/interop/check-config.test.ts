/**
 * `prosodyctl check config` / `check disabled`, ours against real Prosody 0.12's prosodyctl on the
 * same temporary configs: the same lines and exit codes. The configs enable "tls" so that
 * Prosody's XMPP-only TLS warning (not a check of ours) stays out of both outputs; the order of
 * Prosody's option sets is a hash order, so such lists are compared as sets.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chownSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prosodyctl } from "../helpers/cli.js";
import { prosodyMissing } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

const missing = prosodyMissing();

function configFile(body: string): string {
  const dir = mkdtempSync(join(tmpdir(), "check-config-"));
  mkdirSync(join(dir, "data"));
  const file = join(dir, "prosody.cfg.lua");
  const paths = `data_path = "${dir}/data"\npidfile = "${dir}/prosody.pid"\ncertificates = "${dir}"\nlog = { warn = "${dir}/prosody.log" }\n`;
  writeFileSync(file, body.replace("$PATHS", paths));
  const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
  const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
  for (const p of [dir, join(dir, "data"), file]) chownSync(p, uid, gid);
  return file;
}

/**
 * Lines "…: a, b" of option lists sorted, so Prosody's hash order compares equal; Prosody's TLS
 * warning (an XMPP check, not ours) dropped where "tls" is not enabled on any enabled host.
 */
const normalise = (out: string) =>
  out
    .replace("\n\n    You require encryption but mod_tls is not enabled.\n    Connections will fail.\n", "\n")
    .replace(/^certmanager\s.*\n/gm, "") // Prosody's log line about its certificate directory, not part of the check
    .replace(/(following options?: |obsolete options[^\n]*\n    |disabled hosts?: |are disabled: |in the global section:\n    )([^\n]+)/g, (_, head: string, list: string) => head + list.split(", ").sort().join(", "));

const CASES: Array<[string, string]> = [
  ["a clean config", `$PATHS\nmodules_enabled = { "tls", "invites", "invites_api", "http" }\nVirtualHost "example.com"\n`],
  // One misnamed module, one host with misplaced options per config: Prosody lists them in hash order.
  ["auth_ in modules_enabled", `$PATHS\nmodules_enabled = { "tls", "auth_internal_plain" }\nVirtualHost "example.com"\n`],
  ["storage_ in modules_enabled", `$PATHS\nmodules_enabled = { "tls", "storage_sql" }\nVirtualHost "example.com"\n`],
  [
    "options under a host that belong in the global section; mod_ in modules_enabled",
    `$PATHS\nmodules_enabled = { "tls", "invites", "mod_http" }\nVirtualHost "example.com"\nhttp_ports = { 5280 }\nhttp_interfaces = { "127.0.0.1" }\npidfile = "x"\n`,
  ],
  ["no host", `$PATHS\nmodules_enabled = { "tls", "invites" }\n`],
  ["a host section above the global options", `VirtualHost "example.com"\n$PATHS\nmodules_enabled = { "tls" }\n`],
  ["every host disabled, and a global modules_enabled missing", `$PATHS\nVirtualHost "example.com"\nenabled = false\nmodules_enabled = { "tls" }\n`],
  ["no global modules_enabled: the suggestion", `$PATHS\nVirtualHost "a.example"\nmodules_enabled = { "tls", "invites", "http" }\nVirtualHost "b.example"\nmodules_enabled = { "tls", "invites" }\n`],
  [
    "obsolete and deprecated global options, default_storage beside storage",
    `$PATHS\nsetuid = "x"\ndns_timeout = 5\nlegacy_ssl_ports = { 5223 }\nstorage = "internal"\ndefault_storage = "internal"\nmodules_enabled = { "tls" }\nVirtualHost "example.com"\n`,
  ],
  // One deprecated option per config (hash order again).
  ["a deprecated option with its own advice", `$PATHS\ndaemonize = false\nmodules_enabled = { "tls" }\nVirtualHost "example.com"\n`],
];

for (const [name, body] of CASES) {
  test(`check config, ${name}: the same output and exit code as Prosody's`, async (ctx) => {
    if (missing) return skip(ctx, missing);
    const file = configFile(body);
    const theirs = spawnSync("prosodyctl", ["--config", file, "check", "config"], { encoding: "utf8" });
    const ours = await prosodyctl(["--config", file, "check", "config"]);
    assert.is(normalise(ours.stdout), normalise(theirs.stdout));
    assert.is(ours.code, theirs.status);
    assert.match(ours.stdout, /^Checking config\.\.\.\n/);
  });
}

test("check disabled: the same output and exit code as Prosody's, with and without disabled hosts", async (ctx) => {
  if (missing) return skip(ctx, missing);
  for (const body of [
    `$PATHS\nmodules_enabled = { "tls" }\nVirtualHost "a.example"\nenabled = false\nVirtualHost "b.example"\nVirtualHost "c.example"\nenabled = false\n`,
    `$PATHS\nmodules_enabled = { "tls" }\nVirtualHost "a.example"\n`,
  ]) {
    const file = configFile(body);
    const theirs = spawnSync("prosodyctl", ["--config", file, "check", "disabled"], { encoding: "utf8" });
    const ours = await prosodyctl(["--config", file, "check", "disabled"]);
    assert.is(normalise(ours.stdout), normalise(theirs.stdout));
    assert.is(ours.code, theirs.status);
  }
});

test.run();
