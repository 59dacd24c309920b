/**
 * Accounts shared with the real Prosody 0.12 (internal storage, both running): an account made
 * through our web registration logs in to Prosody over XMPP with SCRAM-SHA-1 (and a wrong password
 * is refused); an account made by real `prosodyctl adduser` is taken for our form.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInstance, prosodyMissing, registerOnOurForm, type Instance } from "../helpers/prosody.js";
import { scramLogin } from "../helpers/xmpp.js";
import { skip } from "../helpers/skip.js";

const missing = prosodyMissing();
let inst: Instance | undefined;

test.before(async () => {
  if (missing) return;
  inst = await createInstance("internal", ["saslauth"], ["invites_register_web", "invites_register", "password_policy"]);
  await inst.startProsody();
  await inst.startOurs();
});
test.after(async () => {
  await inst?.cleanup();
});

test("an account registered on our web form logs in to real Prosody with SCRAM-SHA-1", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  const r = await registerOnOurForm(inst, "WebUser", "correct horse 7");
  assert.is(r.status, 200);
  assert.match(r.body.toString(), "Congratulations!");
  const good = await scramLogin(inst.c2sPort, "example.com", "webuser", "correct horse 7");
  assert.equal(good, { ok: true });
  const bad = await scramLogin(inst.c2sPort, "example.com", "webuser", "wrong password");
  assert.equal(bad.ok, false);
  if (!bad.ok) assert.is(bad.condition, "not-authorized");
});

test("an account made by real prosodyctl adduser is taken for our form, and logs in", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  const add = inst.realCtl(["adduser", "realuser@example.com"], "sekrit pass 9\nsekrit pass 9\n");
  assert.is(add.code, 0, add.stdout + add.stderr);
  const r = await registerOnOurForm(inst, "RealUser", "another pass 1");
  assert.is(r.status, 200);
  assert.match(r.body.toString(), "This username is already in use.");
  assert.equal(await scramLogin(inst.c2sPort, "example.com", "realuser", "sekrit pass 9"), { ok: true });
});

test.run();
