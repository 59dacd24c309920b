/** Started as root, prosodyctl switches to prosody_user before touching data (as Prosody's does). */
import { chownSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { skip } from "../helpers/skip.js";

function prosodyIds(): { uid: number; gid: number } | undefined {
  try {
    return { uid: Number(execFileSync("id", ["-u", "prosody"]).toString()), gid: Number(execFileSync("id", ["-g", "prosody"]).toString()) };
  } catch {
    return undefined;
  }
}

const ids = prosodyIds();
const isRoot = process.getuid?.() === 0;

test("as root: data written by prosodyctl belongs to the prosody user, 0640 files in 0750 directories", async (ctx) => {
  if (!isRoot || !ids) return skip(ctx, "needs root and a 'prosody' user (install the prosody package)");
  const { dir, config } = tempConfig(`run_as_root = false\ndata_path = "$DIR/data"\nstorage = "sql"\nVirtualHost "example.com"\n`);
  chownSync(dir, ids.uid, ids.gid);
  chownSync(config, ids.uid, ids.gid);
  const r = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
  assert.is(r.code, 0, r.stdout + r.stderr);
  const db = statSync(join(dir, "data", "prosody.sqlite"));
  assert.is(db.uid, ids.uid);
  assert.is(db.mode & 0o777, 0o640);
  const data = statSync(join(dir, "data"));
  assert.is(data.uid, ids.uid);
  assert.is(data.mode & 0o777, 0o750);
});

test("as root with --root: no switch", async (ctx) => {
  if (!isRoot || !ids) return skip(ctx, "needs root and a 'prosody' user (install the prosody package)");
  const { dir, config } = tempConfig(`run_as_root = false\ndata_path = "$DIR/data"\nstorage = "sql"\nVirtualHost "example.com"\n`);
  const r = await prosodyctl(["--root", "--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.is(statSync(join(dir, "data", "prosody.sqlite")).uid, 0);
});

test("a configured prosody_user that does not exist: Prosody's message, refused, exit 1", async (ctx) => {
  if (!isRoot) return skip(ctx, "needs root");
  const { dir, config } = tempConfig(`run_as_root = false\nprosody_user = "no_such_user_here"\ndata_path = "$DIR/data"\nVirtualHost "example.com"\n`);
  const r = await prosodyctl(["--config", config, "mod_invites_api", "list", "example.com"], { cwd: dir });
  assert.is(r.code, 1);
  assert.match(r.stdout, /^Couldn't switch to Prosody user\/group 'no_such_user_here'\/'no_such_user_here': no-such-group\nRefusing to run as root /);
});

test("a permission problem names the path", async (ctx) => {
  if (!isRoot || !ids) return skip(ctx, "needs root and a 'prosody' user");
  // The data directory's parent is root's 0700 temp dir: the prosody user cannot create it.
  const { dir, config } = tempConfig(`run_as_root = false\ndata_path = "$DIR/data"\nstorage = "sql"\nVirtualHost "example.com"\n`);
  const r = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: "/" });
  assert.is(r.code, 1);
  assert.match(r.stdout, join(dir, "data"));
  assert.not.match(r.stdout + r.stderr, /\n\s+at /, "no stack trace");
});

test.run();
