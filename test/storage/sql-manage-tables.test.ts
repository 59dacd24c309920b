/**
 * Prosody's `sql_manage_tables = false`: our tables are never created; missing tables stop the
 * open with one clear error naming the option (SqlConfigError: the start and prosodyctl stop), on
 * SQLite and on PostgreSQL; tables that exist are used as they are.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SqlDatabases } from "../../src/storage/drivers/sql-database.js";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { postgresMissing, startCluster } from "../helpers/postgres.js";
import { skipIf } from "../helpers/skip.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-manage-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));

const refusal = (p: Promise<unknown>) => p.then(() => undefined, (e: Error) => e);

test("SQLite: without our tables, sql_manage_tables = false refuses the database and creates nothing", async () => {
  const file = path.join(root, "a.sqlite");
  const dbs = new SqlDatabases("prosodyctl");
  const err = await refusal(dbs.open({ driver: "SQLite3", file }, { manageTables: false }));
  assert.ok(err, "refused");
  assert.is(err!.name, "SqlConfigError");
  assert.match(err!.message, /table "prosody" is missing and sql_manage_tables = false/);
  // Made by someone else (here: ourselves with the default), they are used as they are.
  const made = await new SqlDatabases("prosodyctl").lease({ driver: "SQLite3", file });
  await made.release();
  const lease = await new SqlDatabases("prosodyctl").lease({ driver: "SQLite3", file }, { manageTables: false });
  await lease.release();
});

skipIf(test, postgresMissing())("PostgreSQL: the same, and no table is created on a refused database", async () => {
  const cluster = await startCluster();
  try {
    const t = await cluster.createDatabase();
    const target = { driver: "PostgreSQL" as const, ...t };
    const err = await refusal(new SqlDatabases("prosodyctl").open(target, { manageTables: false }));
    assert.is(err?.name, "SqlConfigError");
    assert.match(err!.message, /sql_manage_tables = false/);
    assert.is(cluster.psql(t.database, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).trim(), "0");
    const made = await new SqlDatabases("prosodyctl").lease(target);
    await made.release();
    const lease = await new SqlDatabases("prosodyctl").lease(target, { manageTables: false });
    await lease.release();
  } finally {
    cluster.stop();
  }
});

test("prosodyctl with sql_manage_tables = false and no tables: one line naming the option, exit 1", async () => {
  const { config } = tempConfig(`data_path = "$DIR/data"
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
sql_manage_tables = false
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api" }
`);
  const r = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com", "k"]);
  assert.is(r.code, 1, r.stdout + r.stderr);
  const out = (r.stdout + r.stderr).trim();
  assert.match(out, /sql_manage_tables = false/);
  assert.not.match(out, /\n\s+at /, "no stack trace");
});

test.run();
