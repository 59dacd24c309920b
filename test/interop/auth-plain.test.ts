/**
 * `authentication = "internal_plain"` shared with the real Prosody 0.12 (internal storage, both
 * running): an account registered on our web form logs in to Prosody over XMPP (and a wrong
 * password is refused); an account made by real `prosodyctl adduser` is taken by our form and its
 * password is accepted by our provider (`prosodyctl passwd` on our side keeps it usable by Prosody).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { createInstance, luaLoadDataFile, prosodyMissing, registerOnOurForm, type Instance } from "../helpers/prosody.js";
import { scramLogin } from "../helpers/xmpp.js";
import { skip } from "../helpers/skip.js";
import { loadConfigFile } from "../../src/core/config/index.js";
import { createRuntime } from "../../src/create-runtime.js";
import type { AuthProvider } from "../../plugins/mod_auth_internal_hashed/mod_auth_internal_hashed.js";

const missing = prosodyMissing();
let inst: Instance | undefined;

test.before(async () => {
  if (missing) return;
  inst = await createInstance("internal", ["saslauth"], ["invites_register_web", "invites_register", "password_policy"], 'authentication = "internal_plain"');
  await inst.startProsody();
  await inst.startOurs();
});
test.after(async () => {
  await inst?.cleanup();
});

const accountFile = (i: Instance, user: string) => join(i.dir, "data", "example%2ecom", "accounts", `${user}.dat`);

test("internal_plain: an account registered on our web form logs in to real Prosody", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  const r = await registerOnOurForm(inst, "PlainWeb", "plain horse 7");
  assert.is(r.status, 200, r.body.toString().slice(0, 300));
  assert.match(r.body.toString(), "Congratulations!");
  assert.equal(luaLoadDataFile(accountFile(inst, "plainweb")), { password: "plain horse 7" });
  assert.equal(await scramLogin(inst.c2sPort, "example.com", "plainweb", "plain horse 7"), { ok: true });
  const bad = await scramLogin(inst.c2sPort, "example.com", "plainweb", "wrong password");
  assert.equal(bad.ok, false);
});

test("internal_plain: an account made by real prosodyctl is ours too; our passwd is read by Prosody", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  const add = inst.realCtl(["adduser", "plainreal@example.com"], "sekrit pass 9\nsekrit pass 9\n");
  assert.is(add.code, 0, add.stdout + add.stderr);
  assert.equal(luaLoadDataFile(accountFile(inst, "plainreal")), { password: "sekrit pass 9" });
  // Our provider, on the same data, takes the password Prosody stored.
  const rt = createRuntime({ config: await loadConfigFile(inst.config), processType: "prosodyctl", cwd: inst.dir });
  try {
    const auth = (await rt.modules.load("example.com", "auth_internal_plain")).exports as AuthProvider;
    assert.ok(await auth.testPassword("plainreal", "sekrit pass 9"));
    assert.not.ok(await auth.testPassword("plainreal", "sekrit pass 8"));
  } finally {
    await rt.stop();
  }
  const r = await registerOnOurForm(inst, "plainreal", "another pass 1");
  assert.match(r.body.toString(), "This username is already in use.");
  const passwd = await inst.ourCtl(["passwd", "plainreal@example.com"], "changed pass 4\nchanged pass 4\n");
  assert.is(passwd.code, 0, passwd.stdout + passwd.stderr);
  assert.equal(luaLoadDataFile(accountFile(inst, "plainreal")), { password: "changed pass 4" });
  assert.equal(await scramLogin(inst.c2sPort, "example.com", "plainreal", "changed pass 4"), { ok: true });
  assert.equal((await scramLogin(inst.c2sPort, "example.com", "plainreal", "sekrit pass 9")).ok, false);
});

test.run();
