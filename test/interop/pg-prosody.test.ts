/**
 * Real Prosody 0.12.3 and our SQL driver on one PostgreSQL database (a private cluster):
 * - the tables we create are exactly those Prosody creates (and the recorded fixture);
 * - an account Prosody's prosodyctl creates is read by us, and one we write is found (and deleted)
 *   by Prosody's prosodyctl.
 */
import { spawnSync } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createSqlProvider } from "../../src/storage/drivers/sql.js";
import { SqlDatabase } from "../../src/storage/drivers/sql-database.js";
import { PgEngine, type PgTarget } from "../../src/storage/drivers/sql-pg.js";
import type { KeyvalStore } from "../../src/storage/types.js";
import { DESCRIBE_SCHEMA } from "../helpers/pg-schema.js";
import { postgresMissing, startCluster } from "../helpers/postgres.js";
import { prosodyMissing } from "../helpers/prosody.js";
import { skipIf } from "../helpers/skip.js";
import { recordOf } from "../helpers/records.js";

const missing =
  postgresMissing() ??
  prosodyMissing() ??
  (spawnSync("dpkg", ["-s", "lua-dbi-postgresql"], { stdio: "ignore" }).status !== 0 ? "lua-dbi-postgresql not installed" : undefined);
const cluster = missing ? undefined : await startCluster();
const pgTest = skipIf(test, missing);
const FIXTURE = join(import.meta.dirname, "../fixtures/storage/prosody-pg-schema.txt");

/** A config for real Prosody on `target`, in a directory the prosody user owns. */
function prosodyConfig(target: Required<Omit<PgTarget, "password">>): { config: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "interop-pg-"));
  for (const sub of ["data", "certs"]) mkdirSync(join(dir, sub));
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(
    config,
    `data_path = "${dir}/data"
certificates = "${dir}/certs"
pidfile = "${dir}/prosody.pid"
log = { error = "${dir}/prosody.log" }
storage = "sql"
sql = { driver = "PostgreSQL", database = "${target.database}", username = "${target.username}", host = "${target.host}", port = ${target.port} }
VirtualHost "example.com"
`,
  );
  const uid = Number(spawnSync("id", ["-u", "prosody"], { encoding: "utf8" }).stdout);
  for (const p of [dir, join(dir, "data"), join(dir, "certs"), config]) chownSync(p, uid, uid);
  return { config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function realCtl(config: string, args: string[], input?: string) {
  return spawnSync("prosodyctl", ["--config", config, ...args], { cwd: tmpdir(), input, encoding: "utf8", timeout: 60_000 });
}

const accounts = async (target: PgTarget) => {
  const db = await SqlDatabase.over(await PgEngine.open(target));
  return { db, store: createSqlProvider({ host: "example.com", db }).open("accounts", "keyval") as KeyvalStore };
};

pgTest("our tables on PostgreSQL are exactly those real Prosody creates", async () => {
  const theirs = await cluster!.createDatabase();
  const ours = await cluster!.createDatabase();
  const { config, cleanup } = prosodyConfig(theirs);
  const r = realCtl(config, ["adduser", "alice@example.com"], "pw\npw\n");
  assert.is(r.status, 0, r.stderr);
  await (await SqlDatabase.over(await PgEngine.open(ours))).close();
  const expected = readFileSync(FIXTURE, "utf8");
  assert.fixture(cluster!.psql(theirs.database, DESCRIBE_SCHEMA), expected, "real Prosody's tables are the recorded ones");
  assert.fixture(cluster!.psql(ours.database, DESCRIBE_SCHEMA), expected);
  // Prosody's tables already there: ours open them as they are.
  await (await SqlDatabase.over(await PgEngine.open(theirs))).close();
  assert.fixture(cluster!.psql(theirs.database, DESCRIBE_SCHEMA), expected);
  cleanup();
});

pgTest("an account written by real prosodyctl is read by us, and one we write is found by it", async () => {
  const target = await cluster!.createDatabase();
  const { config, cleanup } = prosodyConfig(target);
  assert.is(realCtl(config, ["adduser", "alice@example.com"], "pw\npw\n").status, 0);
  const { db, store } = await accounts(target);
  const alice = recordOf(await store.get("alice"));
  assert.is(alice?.iteration_count, 10000);
  assert.match(String(alice?.stored_key), /^[0-9a-f]{40}$/);
  assert.equal(Object.keys(alice!).sort(), ["iteration_count", "salt", "server_key", "stored_key"]);

  const before = realCtl(config, ["deluser", "bob@example.com"]);
  assert.is(before.status, 1, "no bob yet");
  assert.match(before.stdout + before.stderr, /That user does not exist/);
  await store.set("bob", { ...alice! });
  const del = realCtl(config, ["deluser", "bob@example.com"]);
  assert.is(del.status, 0, del.stdout + del.stderr);
  assert.is(await store.get("bob"), undefined, "real Prosody deleted the rows we wrote");
  assert.ok(await store.get("alice"));
  await db.close();
  cleanup();
});

test.run();
