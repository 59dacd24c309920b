/**
 * Issue 11 item 9 end to end: accounts registered on our web form under names where nodeprep
 * used to differ from Prosody's (ΣΑΣ, ᾈ, ẞ) are found by real `prosodyctl passwd` (same data
 * directory, internal storage), and accounts made by real `prosodyctl adduser` are "already in use"
 * on our form. Skipped when real Prosody is not installed (or not root).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl } from "../helpers/cli.js";
import { createInstance, prosodyMissing, registerOnOurForm, type Instance } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

const missing = prosodyMissing();
let inst: Instance | undefined;

test.before(async () => {
  if (missing) return;
  inst = await createInstance("internal", [], ["invites_register_web", "invites_register", "password_policy"]);
  await inst.startOurs();
});
test.after(async () => {
  await inst?.cleanup();
});

const accountFiles = (i: Instance) => readdirSync(join(i.dir, "data", "example%2ecom", "accounts")).sort();

const fileName = (user: string) => encodeURIComponent(user).replace(/%([0-9A-F]{2})/g, (_, h: string) => `%${h.toLowerCase()}`) + ".dat";
const PASSWORDS = "another password 2\nanother password 2\n";

test("names registered on our form are found by real prosodyctl passwd (ΣΑΣ → σασ, ᾈ → ἀι)", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  for (const [typed, stored] of [["ΣΑΣ", "σασ"], ["ᾈ", "ἀι"]]) {
    assert.match((await registerOnOurForm(inst, typed, "a good password 1")).body.toString("utf8"), "Congratulations!", typed);
    assert.ok(accountFiles(inst).includes(fileName(stored)), stored);
    const passwd = inst.realCtl(["passwd", `${typed}@example.com`], PASSWORDS);
    assert.is(passwd.code, 0, `${typed}: ${passwd.stdout}${passwd.stderr}`);
  }
});

test("ẞ (unassigned in Unicode 3.2): the form registers it unchanged; both prosodyctl passwd refuse it alike (strict nodeprep)", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  assert.match((await registerOnOurForm(inst, "ẞ", "a good password 1")).body.toString("utf8"), "Congratulations!");
  assert.ok(accountFiles(inst).includes(fileName("ẞ")));
  const theirs = inst.realCtl(["passwd", "ẞ@example.com"], PASSWORDS);
  const ours = await prosodyctl(["--config", inst.config, "passwd", "ẞ@example.com"], { cwd: inst.dir, input: PASSWORDS });
  assert.is(theirs.code, 1);
  assert.match(theirs.stdout, "The given username is invalid in a Jabber ID");
  assert.is(ours.code, 1);
  assert.match(ours.stdout, "The given username is invalid in a Jabber ID");
});

test("accounts made by real prosodyctl adduser under those names are 'already in use' on our form", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  for (const name of ["ΑΣΣ", "ᾉ", "Σ"]) {
    const add = inst.realCtl(["adduser", `${name}@example.com`], "sekrit pass 9\nsekrit pass 9\n");
    assert.is(add.code, 0, add.stdout + add.stderr);
    assert.match((await registerOnOurForm(inst, name, "a good password 1")).body.toString("utf8"), "This username is already in use.", name);
  }
});

test.run();
