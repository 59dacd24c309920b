/**
 * Accounts over XMPP with real Prosody 0.12.3 and our server running at the same time on one
 * PostgreSQL database (a private cluster), both directions:
 * - an invite minted by our HTTP API is redeemed on real Prosody by XEP-0077 in-band registration
 *   after XEP-0445's preauth iq (real mod_invites_register); the account logs in over SCRAM, and the
 *   invite is then spent for both servers; a bogus token gets no account;
 * - an account registered on our web form logs in to real Prosody over SCRAM, and real prosodyctl
 *   knows it.
 */
import { spawnSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { postgresMissing, startCluster, type PgCluster } from "../helpers/postgres.js";
import { createInstance, prosodyMissing, registerOnOurForm, type Instance } from "../helpers/prosody.js";
import { registerInBand, scramLogin } from "../helpers/xmpp.js";
import { skip } from "../helpers/skip.js";

const missing =
  postgresMissing() ??
  prosodyMissing() ??
  (spawnSync("dpkg", ["-s", "lua-dbi-postgresql"], { stdio: "ignore" }).status !== 0 ? "lua-dbi-postgresql not installed" : undefined);
const HOST = "example.com";
let cluster: PgCluster | undefined;
let database = "";
let inst: Instance | undefined;

test.before(async () => {
  if (missing) return;
  cluster = await startCluster();
  const t = await cluster.createDatabase();
  database = t.database;
  inst = await createInstance(
    "sql",
    ["saslauth", "invites_register"],
    ["invites_register_web", "password_policy"],
    `sql = { driver = "PostgreSQL", database = "${t.database}", username = "${t.username}", host = "${t.host}", port = ${t.port} }`,
  );
  await inst.startProsody();
  await inst.startOurs();
});
test.after(async () => {
  await inst?.cleanup();
  cluster?.stop();
});

/** A fresh invite from our running server's API (a key from our prosodyctl). */
async function inviteFromOurApi(i: Instance): Promise<string> {
  const key = (await i.ourCtl(["mod_invites_api", "create", HOST])).stdout.trim();
  const created = await i.get(i.ourPort, `/invites_api?key=${key}`);
  assert.is(created.status, 201);
  return /[?=]([A-Za-z0-9_-]{24})$/.exec(created.header("location")!)![1]!;
}

/** The keys of `user`'s account record in the shared database (one row per field), "" when none. */
const accountRow = (user: string) =>
  cluster!.psql(database, `SELECT string_agg("key", ',' ORDER BY "key") FROM "prosody" WHERE "host" = '${HOST}' AND "store" = 'accounts' AND "user" = '${user}'`).trim();
const HASHED = "iteration_count,salt,server_key,stored_key";

test("an invite from our API is redeemed over in-band registration (XEP-0445 preauth) on real Prosody, then logs in", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  const token = await inviteFromOurApi(inst);
  assert.match((await inst.get(inst.ourPort, `/invites_page?${token}`)).body.toString(), `preauth=${token}`);

  const reg = await registerInBand(inst.c2sPort, HOST, "ibruser", "ibr pass 12", token);
  assert.ok(reg.features.includes("urn:xmpp:ibr-token:0"), `real Prosody offers token registration: ${reg.features.join(" ")}`);
  assert.equal(reg.preauth, { ok: true });
  assert.equal(reg.register, { ok: true });
  assert.is(accountRow("ibruser"), HASHED, "the account is in the shared database");
  assert.equal(await scramLogin(inst.c2sPort, HOST, "ibruser", "ibr pass 12"), { ok: true });
  assert.is((await scramLogin(inst.c2sPort, HOST, "ibruser", "wrong pass")).ok, false);

  // Spent: our landing page and our CLI no longer know it, and real Prosody refuses a second use.
  const page = (await inst.get(inst.ourPort, `/invites_page?${token}`)).body.toString();
  assert.match(page, "Invite expired");
  assert.not.match(page, `preauth=${token}`);
  const shown = await inst.ourCtl(["mod_invites", "show", HOST, token]);
  assert.is(shown.code, 1);
  assert.match(shown.stdout, "Error:");
  const again = await registerInBand(inst.c2sPort, HOST, "ibrtwice", "ibr pass 12", token);
  assert.equal(again.preauth, { ok: false, condition: "forbidden", text: "The invite token is invalid or expired" });
  assert.equal(again.register, { ok: false, condition: "not-acceptable", text: "Registration on this server is through invitation only" });
  assert.is(accountRow("ibrtwice"), "");
});

test("a bogus token, or none, gets no account on real Prosody (registration is invite-only)", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  const bogus = await registerInBand(inst.c2sPort, HOST, "bogususer", "bogus pass 1", "AAAAAAAAAAAAAAAAAAAAAAAA");
  assert.equal(bogus.preauth, { ok: false, condition: "forbidden", text: "The invite token is invalid or expired" });
  assert.equal(bogus.register, { ok: false, condition: "not-acceptable", text: "Registration on this server is through invitation only" });
  const none = await registerInBand(inst.c2sPort, HOST, "bogususer", "bogus pass 1");
  assert.is(none.preauth, undefined);
  assert.equal(none.register, bogus.register);
  assert.is(accountRow("bogususer"), "");
  assert.is((await scramLogin(inst.c2sPort, HOST, "bogususer", "bogus pass 1")).ok, false);
});

test("an account registered on our web form logs in to real Prosody over SCRAM, and real prosodyctl knows it", async (ctx) => {
  if (!inst) return skip(ctx, missing);
  const r = await registerOnOurForm(inst, "PgWebUser", "web pass 345");
  assert.is(r.status, 200);
  assert.match(r.body.toString(), "Congratulations!");
  assert.is(accountRow("pgwebuser"), HASHED);
  assert.equal(await scramLogin(inst.c2sPort, HOST, "pgwebuser", "web pass 345"), { ok: true });
  const bad = await scramLogin(inst.c2sPort, HOST, "pgwebuser", "wrong pass");
  assert.equal(bad, { ok: false, condition: "not-authorized", mechanisms: bad.ok ? [] : bad.mechanisms });
  // Real prosodyctl reads the account from PostgreSQL: adduser refuses the taken name.
  const add = inst.realCtl(["adduser", `pgwebuser@${HOST}`], "other pass 1\nother pass 1\n");
  assert.is(add.code, 1, add.stdout + add.stderr);
  assert.match(add.stdout + add.stderr, "already exists");
  assert.equal(await scramLogin(inst.c2sPort, HOST, "pgwebuser", "web pass 345"), { ok: true }, "adduser changed nothing");
});

test.run();
