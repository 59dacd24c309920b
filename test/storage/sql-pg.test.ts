/**
 * The SQL driver on PostgreSQL (sql-pg.ts), against a private cluster (test/helpers/postgres.ts):
 * the storage conformance suite; reads never served stale when another connection wrote; atomic
 * take and setIfAbsent between two engines (two pools, as two processes would have) on one
 * database; the `sql` option for PostgreSQL; placeholders.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createSqlProvider } from "../../src/storage/drivers/sql.js";
import { SqlDatabase, sqlTarget, sqlTargetKey, sqlTargetLabel } from "../../src/storage/drivers/sql-database.js";
import { PgEngine, numberPlaceholders, type PgTarget } from "../../src/storage/drivers/sql-pg.js";
import { StorageUnavailableError, type KeyvalStore, type MapStore } from "../../src/storage/types.js";
import { freePort } from "../helpers/http.js";
import { postgresMissing, startCluster, type PgCluster } from "../helpers/postgres.js";
import { skipIf } from "../helpers/skip.js";
import { storageConformance } from "./conformance.js";

const missing = postgresMissing();
const cluster: PgCluster | undefined = missing ? undefined : await startCluster();
const shared: PgTarget | undefined = await cluster?.createDatabase("conformance");

const open = async (target: PgTarget) => SqlDatabase.over(await PgEngine.open(target));

if (cluster && shared) {
  storageConformance("sql on PostgreSQL", async () => {
    const db = await open(shared);
    return {
      provider: createSqlProvider({ host: "example.com", db }),
      cleanup: async () => {
        await db.close();
        cluster.psql("conformance", `TRUNCATE "prosody", "prosodyarchive"`);
      },
    };
  }).run();
}

const pgTest = skipIf(test, missing);

test("the sql option names a PostgreSQL database with Prosody's option names", () => {
  const t = sqlTarget({ driver: "PostgreSQL", database: "prosody", username: "u", password: "p", host: "db.example", port: 5433 }, "/data");
  assert.equal(t, { driver: "PostgreSQL", database: "prosody", username: "u", password: "p", host: "db.example", port: 5433 });
  assert.equal(sqlTarget({ driver: "PostgreSQL" }, "/data"), { driver: "PostgreSQL" }, "unset options: libpq's defaults");
  assert.is.not(sqlTargetKey({ driver: "PostgreSQL", database: "a" }), sqlTargetKey({ driver: "PostgreSQL", database: "b" }));
  assert.ok("error" in sqlTarget({ driver: "MySQL" }, "/data"));
  assert.is(sqlTargetLabel({ driver: "PostgreSQL", database: "x" }), "PostgreSQL /var/run/postgresql:5432/x", "messages name the defaults used");
  assert.is(sqlTargetLabel({ driver: "PostgreSQL", username: "u", host: "db", port: 5433, database: "x" }), "PostgreSQL u@db:5433/x");
});

test("placeholders are numbered for PostgreSQL, outside quoted names and strings", () => {
  assert.is(numberPlaceholders(`SELECT "a?" FROM "t" WHERE "x"=? AND 'y?'=? LIMIT 1`), `SELECT "a?" FROM "t" WHERE "x"=$1 AND 'y?'=$2 LIMIT 1`);
});

pgTest("without a username, the process's own user connects (like libpq), not $USER", async () => {
  const saved = process.env.USER;
  process.env.USER = "someone-else";
  try {
    const err = await PgEngine.open({ host: shared!.host, port: shared!.port, database: shared!.database }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.match(String(err), /role "root" does not exist/);
  } finally {
    process.env.USER = saved;
  }
});

pgTest("a map read never comes from a cache when another connection wrote since", async () => {
  const target = await cluster!.createDatabase();
  const [a, b] = [await open(target), await open(target)];
  const mapA = createSqlProvider({ host: "example.com", db: a }).open("invite_token", "map") as MapStore;
  const mapB = createSqlProvider({ host: "example.com", db: b }).open("invite_token", "map") as MapStore;
  await mapA.set(null, "tok", { v: 1 });
  assert.equal(await mapA.get(null, "tok"), { v: 1 });
  assert.equal(await mapA.get(null, "tok"), { v: 1 });
  await mapB.set(null, "tok", { v: 2 });
  assert.equal(await mapA.get(null, "tok"), { v: 2 });
  cluster!.psql(target.database, `DELETE FROM "prosody"`);
  assert.is(await mapA.get(null, "tok"), undefined, "a row deleted by another program is gone at once");
  await a.close();
  await b.close();
});

pgTest("two engines taking the same invites: each is taken exactly once", async () => {
  const target = await cluster!.createDatabase();
  const [a, b] = [await open(target), await open(target)];
  const mapA = createSqlProvider({ host: "example.com", db: a }).open("invite_token", "map") as MapStore;
  const mapB = createSqlProvider({ host: "example.com", db: b }).open("invite_token", "map") as MapStore;
  const keys = Array.from({ length: 30 }, (_, i) => `tok${i}`);
  await mapA.setKeys(null, Object.fromEntries(keys.map((k) => [k, { k }])));
  await mapA.set(null, "", "empty-key invite");
  const results = await Promise.all([...keys, ""].flatMap((k) => [mapA.take!(null, k), mapB.take!(null, k), mapA.take!(null, k), mapB.take!(null, k)]));
  for (let i = 0; i <= keys.length; i++) {
    const won = results.slice(i * 4, i * 4 + 4).filter((r) => r !== undefined);
    assert.is(won.length, 1, `key ${keys[i] ?? '""'} taken ${won.length} times`);
  }
  assert.is(cluster!.psql(target.database, `SELECT count(*) FROM "prosody"`).trim(), "0");
  await a.close();
  await b.close();
});

pgTest("two processes taking the same invites: each is taken by exactly one", async () => {
  const target = await cluster!.createDatabase();
  const db = await open(target);
  const map = createSqlProvider({ host: "example.com", db }).open("invite_token", "map") as MapStore;
  const count = 40;
  await map.setKeys(null, Object.fromEntries(Array.from({ length: count }, (_, i) => [`tok${i}`, { i }])));
  const script = join(import.meta.dirname, "../fixtures/storage/pg-taker.ts");
  const children = [0, 1].map(() => {
    const child = spawn(process.execPath, ["--import", "tsx", script, JSON.stringify(target), String(count)], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    const ready = new Promise<void>((resolve) => child.stdout.setEncoding("utf8").on("data", (d) => (out += d).includes("ready\n") && resolve()));
    const done = new Promise<string[]>((resolve, reject) =>
      child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.split("\n")[1]!) as string[]) : reject(new Error(`taker exited ${code}`)))),
    );
    return { child, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin.end("go\n");
  const [a, b] = await Promise.all(children.map((c) => c.done));
  assert.is(a!.length + b!.length, count, `taken: ${a!.length} + ${b!.length}`);
  assert.equal(new Set([...a!, ...b!]).size, count, "no invite taken twice");
  assert.is(cluster!.psql(target.database, `SELECT count(*) FROM "prosody"`).trim(), "0");
  await db.close();
});

pgTest("two engines creating the same record: exactly one setIfAbsent succeeds", async () => {
  const target = await cluster!.createDatabase();
  const [a, b] = [await open(target), await open(target)];
  const kvA = createSqlProvider({ host: "example.com", db: a }).open("accounts", "keyval") as KeyvalStore;
  const kvB = createSqlProvider({ host: "example.com", db: b }).open("accounts", "keyval") as KeyvalStore;
  for (let i = 0; i < 20; i++) {
    const user = `u${i}`;
    const won = await Promise.all([kvA.setIfAbsent!(user, { by: "a" }), kvB.setIfAbsent!(user, { by: "b" }), kvA.setIfAbsent!(user, { by: "a2" })]);
    assert.is(won.filter(Boolean).length, 1, `${user}: ${won}`);
  }
  assert.is(cluster!.psql(target.database, `SELECT count(*) FROM "prosody"`).trim(), "20");
  await a.close();
  await b.close();
});

pgTest("writes made one after another without waiting apply in that order", async () => {
  const db = await open(await cluster!.createDatabase());
  const map = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  for (let round = 0; round < 20; round++) {
    const writes = Array.from({ length: 30 }, (_, i) => (i % 7 === 3 ? map.take!(null, "k") : map.set(null, "k", i)));
    await Promise.all(writes);
    assert.is(await map.get(null, "k"), 29, `round ${round}`);
  }
  await db.close();
});

pgTest("a failed update leaves nothing behind and the engine usable", async () => {
  const target = await cluster!.createDatabase();
  const db = await open(target);
  const failed = await db.engine
    .update({
      reads: [],
      decide: () => ({ run: [[`INSERT INTO "prosody" VALUES ('h','u','s','k','string','v')`], [`INSERT INTO "nope" VALUES (1)`]], result: 1 }),
    })
    .then(() => undefined, (err: unknown) => err);
  assert.match(String(failed), /"nope" does not exist/);
  assert.is(cluster!.psql(target.database, `SELECT count(*) FROM "prosody"`).trim(), "0");
  await db.engine.execute([[`INSERT INTO "prosody" VALUES (?, ?, ?, ?, ?, ?)`, ["h", "u", "s", "k", "string", "v"]]]);
  assert.is(cluster!.psql(target.database, `SELECT "value" FROM "prosody"`).trim(), "v");
  await db.close();
});

pgTest("an unreachable server is 'unavailable for now' (503), at open and later", async () => {
  const closed = await PgEngine.open({ host: "127.0.0.1", port: await freePort(), username: "postgres", database: "x" }).then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.instance(closed, StorageUnavailableError);
  assert.match(String((closed as Error).message), /cannot connect/);
  const other = await startCluster();
  const db = await open(await other.createDatabase());
  const map = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  await map.set(null, "k", "v");
  other.stop();
  const failures = await Promise.all([map.get(null, "k"), map.set(null, "k", "w"), map.take!(null, "k")].map((p) => p.then(() => undefined, (e: unknown) => e)));
  for (const err of failures) assert.is((err as Error | undefined)?.name, "StorageUnavailableError", String(err));
  await db.close();
  // A statement the server refuses is not "unavailable": its own error.
  const target = await cluster!.createDatabase();
  const live = await open(target);
  const err = await live.engine.execute([[`SELECT * FROM "nope"`]]).then(() => undefined, (e: unknown) => e);
  assert.is((err as { code?: string }).code, "42P01");
  assert.not.instance(err, StorageUnavailableError);
  await live.close();
});

test.run();
