/**
 * `prosodyctl mod_invites generate`, ours and real Prosody's on one config and data directory
 * (internal storage): where `invite_expiry` is read from, and `--reset ""`.
 *
 * Prosody's mod_invites reads `invite_expiry` once, when prosodyctl loads it on the `*`
 * pseudo-host, so its `generate` uses the global value (or 7 days) even for a host that sets its
 * own; its server uses the host's value for invites made on that host. Ours uses the host's value
 * (falling back to the global one) in both, so one host has one expiry: a deliberate difference
 * (README). `--reset ""`: Prosody makes a reset invite for the JID "@host"; ours refuses (exit 2).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { chownSync, mkdirSync, mkdtempSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prosodyctl } from "../helpers/cli.js";
import { luaLoadDataFile, prosodyMissing } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

const missing = prosodyMissing();
const TOKEN = /preauth=([A-Za-z0-9_-]{24})\s*$/;

function setUp(): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "interop-generate-"));
  mkdirSync(join(dir, "data"));
  mkdirSync(join(dir, "certs"));
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(
    config,
    `data_path = "${dir}/data"
pidfile = "${dir}/prosody.pid"
certificates = "${dir}/certs"
log = { warn = "${dir}/prosody.log" }
storage = "internal"
invite_expiry = 100
modules_enabled = { "invites" }
VirtualHost "own.example"
invite_expiry = 5000
VirtualHost "global.example"
`,
  );
  const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
  const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
  for (const p of [dir, join(dir, "data"), join(dir, "certs"), config]) chownSync(p, uid, gid);
  return { dir, config };
}

const real = (config: string, args: string[]) => {
  const r = spawnSync("prosodyctl", ["--config", config, ...args], { encoding: "utf8" });
  return { stdout: r.stdout, code: r.status };
};

function lifetime(dir: string, host: string, out: string): number {
  const token = TOKEN.exec(out)?.[1];
  assert.ok(token, `an invite URI in ${JSON.stringify(out)}`);
  const rec = (luaLoadDataFile(join(dir, "data", host.replaceAll(".", "%2e"), "invite_token.dat")) as Record<string, any>)[token!];
  return rec.expires - rec.created_at;
}

test("invite_expiry: both use the global value for a host without its own; for a host with its own, Prosody's generate ignores it, ours uses it", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const { dir, config } = setUp();
  const theirsGlobal = real(config, ["mod_invites", "generate", "global.example"]);
  assert.is(theirsGlobal.code, 0);
  const oursGlobal = await prosodyctl(["--config", config, "mod_invites", "generate", "global.example"], { cwd: dir });
  assert.is(oursGlobal.code, 0, oursGlobal.stdout + oursGlobal.stderr);
  assert.is(lifetime(dir, "global.example", theirsGlobal.stdout), 100);
  assert.is(lifetime(dir, "global.example", oursGlobal.stdout), 100);

  const theirsOwn = real(config, ["mod_invites", "generate", "own.example"]);
  const oursOwn = await prosodyctl(["--config", config, "mod_invites", "generate", "own.example"], { cwd: dir });
  assert.is(lifetime(dir, "own.example", theirsOwn.stdout), 100, "Prosody: the global value");
  assert.is(lifetime(dir, "own.example", oursOwn.stdout), 5000, "ours: the host's value (deliberate)");
});

test('generate --reset "": Prosody makes an invite for "@host" (exit 0); ours refuses with exit 2 and writes nothing', async (ctx) => {
  if (missing) return skip(ctx, missing);
  const { config } = setUp();
  const theirs = real(config, ["mod_invites", "generate", "global.example", "--reset", ""]);
  assert.is(theirs.code, 0);
  assert.match(theirs.stdout, /xmpp:@global\.example\?register;preauth=/);
  const { dir: dir2, config: config2 } = setUp();
  const ours = await prosodyctl(["--config", config2, "mod_invites", "generate", "global.example", "--reset", ""], { cwd: dir2 });
  assert.is(ours.code, 2);
  assert.is(ours.stdout, "Please supply a valid username to generate a reset link for\n");
  const hostDir = join(dir2, "data", "global%2eexample");
  assert.not.ok(existsSync(hostDir) && readdirSync(hostDir).includes("invite_token.dat"));
});

test.run();
