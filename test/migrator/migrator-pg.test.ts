/**
 * prosody-migrator-ts with PostgreSQL (a private cluster): internal → PostgreSQL → SQLite →
 * internal byte for byte; a run killed with SIGKILL midway completes on the next run; real
 * Prosody's prosody-migrator, given the same input, writes the same rows as ours (SQLite and
 * PostgreSQL), and real prosodyctl finds an account we migrated.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { migrator, migratorConfig, seedInternal, startMigrator, treeBytes } from "../helpers/migrator.js";
import { postgresMissing, startCluster } from "../helpers/postgres.js";
import { prosodyMissing } from "../helpers/prosody.js";
import { seededRandom } from "../helpers/seed.js";
import { skipIf } from "../helpers/skip.js";

const missing = postgresMissing();
const cluster = missing ? undefined : await startCluster();
const pgTest = skipIf(test, missing);
const realMissing =
  missing ??
  prosodyMissing() ??
  (spawnSync("dpkg", ["-s", "lua-dbi-postgresql"], { stdio: "ignore" }).status !== 0 ? "lua-dbi-postgresql not installed" : undefined) ??
  (spawnSync("dpkg", ["-s", "lua-dbi-sqlite3"], { stdio: "ignore" }).status !== 0 ? "lua-dbi-sqlite3 not installed" : undefined);
const realTest = skipIf(test, realMissing);

const pgStore = (name: string, t: { database: string; username: string; host: string; port: number }) =>
  `${name} { type = "sql", driver = "PostgreSQL", database = "${t.database}", username = "${t.username}", host = "${t.host}", port = ${t.port} }`;
const ROWS = `SELECT "host", "user", "store", "key", "type", "value" FROM "prosody" ORDER BY 1, 2, 3, 4`;

pgTest("internal → PostgreSQL → SQLite → internal gives byte-identical .dat files", async () => {
  const t = await cluster!.createDatabase();
  const { dir, config } = migratorConfig(`
local d = "$DIR"
files { type = "internal", path = d .. "/a" }
${pgStore("pg", t)}
lite { type = "sql", driver = "SQLite3", database = d .. "/prosody.sqlite" }
back { type = "internal", path = d .. "/b" }
`);
  await seedInternal(join(dir, "a"), 300);
  for (const [from, to] of [["files", "pg"], ["pg", "lite"], ["lite", "back"]] as const) {
    const r = await migrator(["--root", "--config", config, from, to]);
    assert.is(r.code, 0, `${from} → ${to}: ${r.stdout}${r.stderr}`);
  }
  assert.is(cluster!.psql(t.database, `SELECT count(*) FROM "prosody" WHERE "store" = 'invite_token'`).trim(), "300");
  const a = treeBytes(join(dir, "a"));
  const b = treeBytes(join(dir, "b"));
  assert.equal([...b.keys()], [...a.keys()]);
  for (const [file, bytes] of a) assert.ok(bytes.equals(b.get(file)!), `${file} differs`);
  const rowsBefore = cluster!.psql(t.database, `SELECT ctid, * FROM "prosody" ORDER BY ctid`);
  const again = await migrator(["--root", "--config", config, "files", "pg"]);
  assert.match(again.stdout, /\t0 record\(s\) written, 9 already up to date\n/);
  assert.is(cluster!.psql(t.database, `SELECT ctid, * FROM "prosody" ORDER BY ctid`), rowsBefore, "a second run changes no row");
});

pgTest("a run killed with SIGKILL midway is completed by the next run", async () => {
  const { random } = seededRandom();
  const t = await cluster!.createDatabase();
  const { dir, config } = migratorConfig(`input { type = "internal", path = "$DIR/a" }\n${pgStore("output", t)}\n`);
  await seedInternal(join(dir, "a"), 10, 1500);
  const count = () => {
    try {
      return Number(cluster!.psql(t.database, `SELECT count(DISTINCT "user") FROM "prosody" WHERE "store" = 'accounts'`).trim());
    } catch {
      return 0; // the migrator has not created the table yet
    }
  };
  const { child, done } = startMigrator(["--root", "--config", config]);
  const target = 100 + Math.floor(random() * 900); // users written before the kill
  while (count() < target) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGKILL");
  await done;
  const partial = count();
  assert.ok(partial >= target && partial < 1500, `killed midway (${partial} of 1500 users written)`);
  const r = await migrator(["--root", "--config", config]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /Verified host example\.com store accounts: 1500 record\(s\)/);
  // What the killed run wrote is kept (read back and found equal), the rest is written now.
  const [, written, unchanged] = /\t(\d+) record\(s\) written, (\d+) already up to date\n/.exec(r.stdout)!.map(Number);
  assert.is(written! + unchanged!, 1504);
  assert.ok(unchanged! >= partial, `${unchanged} unchanged, ${partial} users were written before the kill`);
  assert.is(count(), 1500);
  assert.is(cluster!.psql(t.database, `SELECT count(*) FROM (SELECT "user", "key" FROM "prosody" WHERE "store" = 'accounts' GROUP BY 1, 2 HAVING count(*) > 1) d`).trim(), "0", "no row twice");
});

/** Real prosody-migrator and ours, same input, each into its own SQLite file and PostgreSQL database. */
realTest("real prosody-migrator writes the same rows as ours; real prosodyctl finds an account we moved", async () => {
  const theirsPg = await cluster!.createDatabase();
  const oursPg = await cluster!.createDatabase();
  const hosts = `hosts = { ["example.com"] = { "accounts", "invite_token", "invite_api_keys" }, ["conf.example.org"] = { "vcard", "settings" } }`;
  const { dir, config } = migratorConfig(`
local d = "$DIR"
input { type = "internal", path = d .. "/a", ${hosts} }
theirs { type = "sql", driver = "SQLite3", database = d .. "/theirs.sqlite" }
ours { type = "sql", driver = "SQLite3", database = d .. "/ours.sqlite" }
${pgStore("theirs_pg", theirsPg)}
${pgStore("ours_pg", oursPg)}
`);
  await seedInternal(join(dir, "a"), 50);
  const uid = Number(spawnSync("id", ["-u", "prosody"], { encoding: "utf8" }).stdout);
  spawnSync("chown", ["-R", `${uid}:${uid}`, dir]);
  chmodSync(dir, 0o755);
  for (const to of ["theirs", "theirs_pg"]) {
    const real = spawnSync("prosody-migrator", ["--config", config, "input", to], { encoding: "utf8", timeout: 60_000 });
    assert.is(real.status, 0, real.stdout + real.stderr);
  }
  for (const to of ["ours", "ours_pg"]) {
    const r = await migrator(["--config", config, "input", to]);
    assert.is(r.code, 0, r.stdout + r.stderr);
  }
  const lite = (file: string) => spawnSync("sqlite3", [join(dir, file), ROWS], { encoding: "utf8" }).stdout;
  // JSON values compared as data: Prosody's encoder writes a table's keys in hash order.
  const normal = (rows: string) =>
    rows
      .trim()
      .split("\n")
      .map((line) => {
        const f = line.split("|");
        return f[4] === "json" ? [...f.slice(0, 5), JSON.stringify(sortDeep(JSON.parse(f.slice(5).join("|"))))].join("|") : line;
      })
      .sort();
  const theirRows = normal(lite("theirs.sqlite"));
  assert.ok(theirRows.length > 60, `${theirRows.length} rows`);
  assert.equal(normal(lite("ours.sqlite")), theirRows, "SQLite rows");
  assert.equal(normal(cluster!.psql(oursPg.database, ROWS)), normal(cluster!.psql(theirsPg.database, ROWS)), "PostgreSQL rows");
  assert.equal(normal(cluster!.psql(oursPg.database, ROWS)), theirRows, "PostgreSQL rows as SQLite's");

  // Real prosodyctl on our PostgreSQL database finds alice (deluser fails for a user that does not exist).
  mkdirSync(join(dir, "pdata"));
  chownSync(join(dir, "pdata"), uid, uid);
  const cfg = join(dir, "prosody.cfg.lua");
  spawnSync("sh", ["-c", `cat > ${cfg}`], {
    input: `data_path = "${dir}/pdata"\npidfile = "${dir}/p.pid"\nlog = { error = "${dir}/p.log" }\nstorage = "sql"\nsql = { driver = "PostgreSQL", database = "${oursPg.database}", username = "${oursPg.username}", host = "${oursPg.host}", port = ${oursPg.port} }\nVirtualHost "example.com"\n`,
  });
  const del = spawnSync("prosodyctl", ["--config", cfg, "deluser", "alice@example.com"], { encoding: "utf8", timeout: 60_000 });
  assert.is(del.status, 0, del.stdout + del.stderr);
  assert.is(cluster!.psql(oursPg.database, `SELECT count(*) FROM "prosody" WHERE "user" = 'alice'`).trim(), "0");
  const none = spawnSync("prosodyctl", ["--config", cfg, "deluser", "nobody-here@example.com"], { encoding: "utf8", timeout: 60_000 });
  assert.is.not(none.status, 0, "deluser of a missing user fails");
});

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) Object.defineProperty(out, k, { value: sortDeep((v as Record<string, unknown>)[k]), enumerable: true });
    return out;
  }
  return v;
}

test.run();
