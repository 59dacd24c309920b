/**
 * What a write costs on PostgreSQL (sql-pg.ts), on a private cluster whose statement log we read:
 * a write is one round trip (BEGIN, the write lock, its statements and COMMIT in one message), an
 * update two (the locked reads, then the decided statements with COMMIT), so the database-wide write
 * lock is never held while the server waits for this process. And the values, sent inside those
 * messages as literals, arrive exactly as given.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SqlDatabase } from "../../src/storage/drivers/sql-database.js";
import { PgEngine, WRITE_LOCK } from "../../src/storage/drivers/sql-pg.js";
import { postgresMissing, startCluster, type PgCluster } from "../helpers/postgres.js";
import { skipIf } from "../helpers/skip.js";

const missing = postgresMissing();
const pgTest = skipIf(test, missing);
let cluster: PgCluster | undefined;
let target: Awaited<ReturnType<PgCluster["createDatabase"]>>;
let db: SqlDatabase;

test.before(async () => {
  if (missing) return;
  cluster = await startCluster();
  target = await cluster.createDatabase();
  db = await SqlDatabase.over(await PgEngine.open(target));
  await db.engine.ensureSchema();
  // Every statement the server receives is logged, prefixed by its database's name.
  cluster.psql("postgres", "ALTER SYSTEM SET log_statement = 'all'");
  cluster.psql("postgres", "ALTER SYSTEM SET log_line_prefix = '%d|'");
  cluster.psql("postgres", "SELECT pg_reload_conf()");
  await new Promise((r) => setTimeout(r, 300));
});
test.after(async () => {
  await db?.close();
  cluster?.stop();
});

/** The messages (simple or extended query) the server received for our database while `fn` ran. */
async function messagesDuring(fn: () => Promise<unknown>): Promise<string[]> {
  const log = join(cluster!.dir, "log");
  const from = statSync(log).size;
  await fn();
  await new Promise((r) => setTimeout(r, 200));
  const text = readFileSync(log).subarray(from).toString("utf8"); // `from` counts bytes
  return text.split(/\n(?=\S)/).filter((l) => l.startsWith(`${target.database}|LOG:  `) && /LOG: {2}(statement|execute [^:]*):/.test(l));
}

const ROW = `INSERT INTO "prosody" ("host", "user", "store", "key", "type", "value") VALUES (?, ?, ?, ?, ?, ?)`;

pgTest("a write is one round trip to the server, with the write lock and COMMIT inside it", async () => {
  const msgs = await messagesDuring(() =>
    db.engine.execute([
      [`DELETE FROM "prosody" WHERE "host" = ? AND "user" = ? AND "store" = ? AND "key" = ?`, ["example.com", "", "rt", "k1"]],
      [ROW, ["example.com", "", "rt", "k1", "string", "v1"]],
    ]),
  );
  assert.is(msgs.length, 1, msgs.join("\n"));
  const m = msgs[0]!;
  for (const part of ["BEGIN", `pg_advisory_xact_lock(${WRITE_LOCK})`, "DELETE FROM", "INSERT INTO", "COMMIT"]) assert.ok(m.includes(part), `${part} in ${m}`);
  assert.ok(m.indexOf("BEGIN") < m.indexOf("pg_advisory_xact_lock") && m.indexOf("INSERT INTO") < m.indexOf("COMMIT"), m);
  assert.is(cluster!.psql(target.database, `SELECT "value" FROM "prosody" WHERE "store" = 'rt'`).trim(), "v1");
});

pgTest("an update is two round trips: locked reads, then the decided statements with COMMIT", async () => {
  await db.engine.execute([[ROW, ["example.com", "", "rt2", "tok", "string", "once"]]]);
  let seen: unknown;
  const msgs = await messagesDuring(() =>
    db.engine.update({
      reads: [[`SELECT "value" FROM "prosody" WHERE "store" = ? AND "key" = ?`, ["rt2", "tok"]]],
      decide: (rows) => {
        seen = rows;
        return { run: [[`DELETE FROM "prosody" WHERE "store" = ? AND "key" = ?`, ["rt2", "tok"]]], result: rows[0]!.length };
      },
    }),
  );
  assert.equal(seen, [[{ value: "once" }]]);
  assert.is(msgs.length, 2, msgs.join("\n"));
  assert.match(msgs[0]!, /BEGIN[\s\S]*pg_advisory_xact_lock[\s\S]*FOR UPDATE/);
  assert.match(msgs[1]!, /DELETE FROM[\s\S]*COMMIT/);
  assert.is(cluster!.psql(target.database, `SELECT count(*) FROM "prosody" WHERE "store" = 'rt2'`).trim(), "0");
});

pgTest("values inside the message arrive unchanged (quotes, backslashes, placeholders, Unicode, numbers, null)", async () => {
  const values = ["it's", "a\\b\\'c", "?", "$1 ? '?'", "line\nbreak\ttab", "E'x'", "ünïcødé 🙂 𝄞", "", "--", "/* not a comment */", "'; DROP TABLE prosody; --"];
  await db.engine.execute(values.map((v, i) => [ROW, ["example.com", "", "lit", `k${i}`, "string", v]] as const));
  const read = await db.engine.read((v) => v.all(`SELECT "key", "value" FROM "prosody" WHERE "store" = ? ORDER BY "key"`, ["lit"]));
  assert.equal(Object.fromEntries(read.map((r) => [r.key, r.value])), Object.fromEntries(values.map((v, i) => [`k${i}`, v])));
  // Keys with quotes found by an update's locked read; numbers and null as the server takes them.
  const found = await db.engine.update({
    reads: values.map((_, i) => [`SELECT "value" FROM "prosody" WHERE "store" = 'lit' AND "key" = ? AND COALESCE(?, 'none') = 'none' AND ? = 42`, [`k${i}`, null, 42]] as const),
    decide: (rows) => ({ run: [], result: rows.map((r) => r[0]?.value) }),
  });
  assert.equal(found, values);
  await db.engine.execute([[`INSERT INTO "prosodyarchive" ("host", "user", "store", "key", "when", "with", "type", "value") VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ["h", "u", "s", "a'1", -1700000000, "w", "string", "x"]]]);
  assert.is(cluster!.psql(target.database, `SELECT "when" FROM "prosodyarchive" WHERE "key" = 'a''1'`).trim(), "-1700000000");
});

pgTest("writes waiting for their turn go to the server together: one transaction, in their order", async () => {
  const writes: Promise<void>[] = [];
  const msgs = await messagesDuring(async () => {
    for (let i = 0; i < 20; i++) {
      writes.push(
        db.engine.execute([
          [`DELETE FROM "prosody" WHERE "store" = ? AND "key" = ?`, ["batch", "k"]],
          [ROW, ["example.com", "", "batch", "k", "string", `v${i}`]],
        ]),
      );
    }
    await Promise.all(writes);
  });
  // Made in one go, before the first could start: all in one message.
  assert.is(msgs.length, 1, msgs.join("\n"));
  assert.is((msgs[0]!.match(/INSERT INTO/g) ?? []).length, 20);
  assert.is((msgs[0]!.match(/COMMIT/g) ?? []).length, 1);
  assert.is(cluster!.psql(target.database, `SELECT string_agg("value", ',') FROM "prosody" WHERE "store" = 'batch'`).trim(), "v19");
});

pgTest("a write that fails in a batch fails alone; the others are committed", async () => {
  const row = (k: string) => [ROW, ["example.com", "", "alone", k, "string", k]] as const;
  const results = await Promise.all(
    [
      db.engine.execute([row("a")]),
      db.engine.execute([row("b")]),
      db.engine.execute([row("c"), [`INSERT INTO "nope" VALUES (?)`, [1]]]),
      db.engine.execute([row("d")]),
      db.engine.update({ reads: [[`SELECT "key" FROM "prosody" WHERE "store" = 'alone' ORDER BY "key"`]], decide: (rows) => ({ run: [row("e")], result: rows[0]!.map((r) => r.key) }) }),
      db.engine.execute([row("f")]),
    ].map((p) => p.then((v) => v ?? "ok", (e: unknown) => (e as { code?: string }).code ?? String(e))),
  );
  assert.equal(results, ["ok", "ok", "42P01", "ok", ["a", "b", "d"], "ok"]);
  assert.is(cluster!.psql(target.database, `SELECT string_agg("key", ',' ORDER BY "key") FROM "prosody" WHERE "store" = 'alone'`).trim(), "a,b,d,e,f");
});

test.run();
