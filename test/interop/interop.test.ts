/**
 * Two-way interop with the real Prosody 0.12 (Debian package), for `internal` and `sql` storage:
 * keys, invites and records made by either side are accepted and read back by the other.
 * `internal`: both servers run at the same time on one data directory (live sharing).
 * `sql`: one process family at a time (sql.js cannot share SQLite's file locks; see README).
 * Skips with the reason when Prosody is not installed (`npm test` installs it when run as root).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createInstance, luaLoadDataFile, prosodyMissing, type Instance } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

const missing = prosodyMissing();
const KEY = /^([A-Za-z0-9_-]{12})\/([A-Za-z0-9_-]{36})$/;

function lastLine(s: string): string {
  return s.trim().split("\n").pop() ?? "";
}

/** Prosody's landing page marks a valid invite with a Link header naming its xmpp: URI. */
async function prosodyAcceptsInvite(inst: Instance, token: string): Promise<boolean> {
  const r = await inst.get(inst.prosodyPort, `/invites_page?${token}`);
  return r.status === 200 && (r.header("link") ?? "").includes(`preauth=${token}`);
}

async function ourViewOfInvite(inst: Instance, token: string): Promise<any> {
  const r = await inst.ourCtl(["mod_invites", "show", "example.com", token]);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

function sqliteRow(inst: Instance, store: string, key: string): any {
  const out = execFileSync("sqlite3", ["-json", join(inst.dir, "data", "prosody.sqlite"), `SELECT type, value FROM prosody WHERE store = '${store}' AND key = '${key}'`]).toString();
  const rows = out.trim() ? JSON.parse(out) : [];
  return rows[0] ? JSON.parse(rows[0].value) : undefined;
}

// ---------------------------------------------------------------------------------------------
const internal = suite<{ inst?: Instance }>("interop internal (live sharing)", {});

internal.before(async (ctx) => {
  if (missing) return;
  ctx.inst = await createInstance("internal");
  await ctx.inst.startProsody();
  await ctx.inst.startOurs();
});
internal.after(async (ctx) => {
  await ctx.inst?.cleanup();
});

internal("a key made by our prosodyctl works on real Prosody's /invites_api at once, and the reverse", async (ctx) => {
  const { inst } = ctx;
  if (!inst) return skip(ctx, missing);
  const ours = await inst.ourCtl(["mod_invites_api", "create", "example.com", "made by ours"]);
  assert.match(ours.stdout.trim(), KEY, ours.stdout + ours.stderr);
  const onProsody = await inst.get(inst.prosodyPort, `/invites_api?key=${ours.stdout.trim()}`);
  assert.is(onProsody.status, 201);
  const real = inst.realCtl(["mod_invites_api", "create", "example.com", "made by prosody"]);
  const realKey = lastLine(real.stdout);
  assert.match(realKey, KEY, real.stdout + real.stderr);
  const onOurs = await inst.get(inst.ourPort, `/invites_api?key=${realKey}`);
  assert.is(onOurs.status, 201);
  // both listings show both keys
  const ourList = (await inst.ourCtl(["mod_invites_api", "list", "example.com"])).stdout;
  const realList = inst.realCtl(["mod_invites_api", "list", "example.com"]).stdout;
  for (const list of [ourList, realList]) {
    assert.match(list, `${ours.stdout.split("/")[0]}\tmade by ours`);
    assert.match(list, `${realKey.split("/")[0]}\tmade by prosody`);
  }
});

internal("an invite made by our API is accepted by Prosody; one made by Prosody's API by ours", async (ctx) => {
  const { inst } = ctx;
  if (!inst) return skip(ctx, missing);
  const key = lastLine(inst.realCtl(["mod_invites_api", "create", "example.com"]).stdout);
  const fromOurs = await inst.get(inst.ourPort, `/invites_api?key=${key}`);
  assert.is(fromOurs.status, 201);
  const ourToken = /preauth=([A-Za-z0-9_-]{24})|\?([A-Za-z0-9_-]{24})$/.exec(fromOurs.header("location")!)!.slice(1).find(Boolean)!;
  assert.ok(await prosodyAcceptsInvite(inst, ourToken), "Prosody's landing page accepts our invite");
  const fromProsody = await inst.get(inst.prosodyPort, `/invites_api?key=${key}`);
  assert.is(fromProsody.status, 201);
  const theirToken = fromProsody.header("location")!.split("?").pop()!;
  const view = await ourViewOfInvite(inst, theirToken);
  assert.is(view?.token, theirToken, "our mod_invites accepts Prosody's invite");
  assert.is(view.additional_data.source, `api/token/${key.split("/")[0]}`);
});

internal("records written by each side read back equal on the other (Prosody's own Lua loads ours)", async (ctx) => {
  const { inst } = ctx;
  if (!inst) return skip(ctx, missing);
  const keys = join(inst.dir, "data", "example%2ecom", "invite_api_keys.dat");
  const viaLua = luaLoadDataFile(keys) as Record<string, any>;
  const ourKey = await inst.ourCtl(["mod_invites_api", "create", "example.com", "ünïcode\tname"]);
  const id = ourKey.stdout.split("/")[0]!;
  const after = luaLoadDataFile(keys) as Record<string, any>;
  assert.equal(Object.keys(after).length, Object.keys(viaLua).length + 1);
  assert.equal(after[id], { id, token: ourKey.stdout.trim().split("/")[1], name: "ünïcode\tname", created_at: after[id].created_at, allowed_methods: { GET: true, POST: true } });
  // a record Prosody wrote (its invite_token.dat) is what we read
  const tokens = luaLoadDataFile(join(inst.dir, "data", "example%2ecom", "invite_token.dat")) as Record<string, any>;
  for (const [token, record] of Object.entries(tokens)) {
    const ours = await ourViewOfInvite(inst, token);
    assert.equal(ours, record, `invite ${token}`);
  }
  // our file is Prosody's format: TAB-indented, ["key"] = value;
  const text = readFileSync(keys, "utf8");
  assert.match(text, /^return \{\n\t\["/);
  assert.match(text, /;\n\};\n$/);
});

internal.run();

// ---------------------------------------------------------------------------------------------
const sql = suite<{ inst?: Instance }>("interop sql (one side at a time)", {});

sql.before(async (ctx) => {
  if (missing) return;
  ctx.inst = await createInstance("sql");
});
sql.after(async (ctx) => {
  await ctx.inst?.cleanup();
});

sql("keys and invites cross over both ways through the same SQLite file", async (ctx) => {
  const { inst } = ctx;
  if (!inst) return skip(ctx, missing);
  // 1. ours writes (and, being the only process, folds into prosody.sqlite)
  const ourKey = (await inst.ourCtl(["mod_invites_api", "create", "example.com", "ours"])).stdout.trim();
  assert.match(ourKey, KEY);
  assert.equal(sqliteRow(inst, "invite_api_keys", ourKey.split("/")[0]!).token, ourKey.split("/")[1]);
  // 2. real Prosody uses our key, and makes its own key and an invite
  await inst.startProsody();
  const r1 = await inst.get(inst.prosodyPort, `/invites_api?key=${ourKey}`);
  assert.is(r1.status, 201);
  const theirToken = r1.header("location")!.split("?").pop()!;
  const realKey = lastLine(inst.realCtl(["mod_invites_api", "create", "example.com", "theirs"]).stdout);
  assert.match(realKey, KEY);
  await inst.stopProsody();
  // 3. ours serves Prosody's key and reads Prosody's invite
  await inst.startOurs();
  const r2 = await inst.get(inst.ourPort, `/invites_api?key=${realKey}`);
  assert.is(r2.status, 201);
  const ourToken = /preauth=([A-Za-z0-9_-]{24})|\?([A-Za-z0-9_-]{24})$/.exec(r2.header("location")!)!.slice(1).find(Boolean)!;
  await inst.stopOurs();
  const view = await ourViewOfInvite(inst, theirToken);
  assert.is(view?.token, theirToken);
  assert.equal(view, sqliteRow(inst, "invite_token", theirToken), "our reading equals Prosody's row");
  // 4. Prosody accepts the invite our server made
  await inst.startProsody();
  assert.ok(await prosodyAcceptsInvite(inst, ourToken));
  await inst.stopProsody();
  const row = sqliteRow(inst, "invite_token", ourToken);
  assert.is(row.additional_data.source, `api/token/${realKey.split("/")[0]}`);
});

sql.run();
