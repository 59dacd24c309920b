/**
 * Real Prosody 0.12.3 and our server running at the same time on one PostgreSQL database (a
 * private cluster): API keys and invites made by either are used by the other at once, with no
 * restart (no cache of ours serves a row the other side changed).
 */
import { spawnSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { postgresMissing, startCluster } from "../helpers/postgres.js";
import { createInstance, prosodyMissing } from "../helpers/prosody.js";
import { skipIf } from "../helpers/skip.js";

const missing =
  postgresMissing() ??
  prosodyMissing() ??
  (spawnSync("dpkg", ["-s", "lua-dbi-postgresql"], { stdio: "ignore" }).status !== 0 ? "lua-dbi-postgresql not installed" : undefined);
const KEY = /^([A-Za-z0-9_-]{12})\/([A-Za-z0-9_-]{36})$/;
const lastLine = (s: string) => s.trim().split("\n").pop() ?? "";
const tokenOf = (location: string) => /preauth=([A-Za-z0-9_-]{24})|\?([A-Za-z0-9_-]{24})$/.exec(location)!.slice(1).find(Boolean)!;

skipIf(test, missing)("keys and invites cross over both ways while both servers run on one PostgreSQL database", async () => {
  const cluster = await startCluster();
  const t = await cluster.createDatabase();
  const inst = await createInstance("sql", [], [], `sql = { driver = "PostgreSQL", database = "${t.database}", username = "${t.username}", host = "${t.host}", port = ${t.port} }`);
  try {
    await inst.startProsody();
    await inst.startOurs();
    // A key made by our prosodyctl works on real Prosody at once; the invite it makes is ours to see.
    const ourKey = (await inst.ourCtl(["mod_invites_api", "create", "example.com", "ours"])).stdout.trim();
    assert.match(ourKey, KEY);
    const r1 = await inst.get(inst.prosodyPort, `/invites_api?key=${ourKey}`);
    assert.is(r1.status, 201);
    const theirToken = tokenOf(r1.header("location")!);
    const shown = await inst.ourCtl(["mod_invites", "show", "example.com", theirToken]);
    assert.is(shown.code, 0, shown.stderr);
    assert.is(JSON.parse(shown.stdout).token, theirToken);
    const row = cluster.psql(t.database, `SELECT "type" FROM "prosody" WHERE "store" = 'invite_token' AND "key" = '${theirToken}'`).trim();
    assert.is(row, "json");
    // A key made by real prosodyctl works on our running server; real Prosody accepts our invite.
    const realKey = lastLine(inst.realCtl(["mod_invites_api", "create", "example.com", "theirs"]).stdout);
    assert.match(realKey, KEY);
    const r2 = await inst.get(inst.ourPort, `/invites_api?key=${realKey}`);
    assert.is(r2.status, 201);
    const ourToken = tokenOf(r2.header("location")!);
    const page = await inst.get(inst.prosodyPort, `/invites_page?${ourToken}`);
    assert.is(page.status, 200);
    assert.ok((page.header("link") ?? "").includes(`preauth=${ourToken}`), "Prosody's landing page knows our invite");
    // Revoked by real prosodyctl: our running server refuses the key at once, as Prosody does.
    const id = realKey.split("/")[0]!;
    assert.is(inst.realCtl(["mod_invites_api", "delete", "example.com", id]).code, 0);
    const [ours, theirs] = [await inst.get(inst.ourPort, `/invites_api?key=${realKey}`), await inst.get(inst.prosodyPort, `/invites_api?key=${realKey}`)];
    assert.is(theirs.status, 403);
    assert.is(ours.status, theirs.status);
  } finally {
    await inst.cleanup();
    cluster.stop();
  }
});

test.run();
