/**
 * The SQL driver over an engine whose reads and updates are asynchronous (a network engine's shape,
 * such as PostgreSQL's): the driver must not depend on sql.js answering synchronously. The engine
 * here forwards to the sql.js engine, answering every read with a promise and running updates a
 * turn later, and the storage conformance suite runs on it. Plus the read view's guard.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createSqlProvider } from "../../src/storage/drivers/sql.js";
import { SqlDatabase, openSqlDatabase } from "../../src/storage/drivers/sql-database.js";
import type { SqlEngine, SqlReadView, SqlStatement, SqlUpdate } from "../../src/storage/drivers/sql-engine.js";
import type { SqljsEngine } from "../../src/storage/drivers/sql-sqljs.js";
import type { MapStore } from "../../src/storage/types.js";
import { storageConformance } from "./conformance.js";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "prosody-ts-sqlengine-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
let n = 0;

const later = () => new Promise<void>((r) => setImmediate(r));

/** Every answer a promise, every write a turn late: what a driver sees from a networked database. */
class AsyncEngine implements SqlEngine {
  reads = 0;
  constructor(private readonly inner: SqljsEngine) {}
  get label() {
    return `async(${this.inner.label})`;
  }
  ensureSchema() {
    return this.inner.ensureSchema();
  }
  read<T>(fn: (view: SqlReadView) => T): T;
  read<T, A>(fn: (view: SqlReadView, arg: A) => T, arg: A): T;
  read<T, A>(fn: (view: SqlReadView, arg: A) => T, arg?: A): T {
    this.reads++;
    return this.inner.read((view) =>
      fn(
        {
          foreignChanges: view.foreignChanges,
          get: (sql, params) => Promise.resolve(view.get(sql, params)),
          all: (sql, params) => Promise.resolve(view.all(sql, params)),
        },
        arg as A,
      ),
    );
  }
  async execute(statements: readonly SqlStatement[]) {
    await later();
    return this.inner.execute(statements);
  }
  async update<T>(u: SqlUpdate<T>) {
    await later();
    return this.inner.update(u);
  }
  othersOpen() {
    return this.inner.othersOpen();
  }
  close(opts: { fold: boolean }) {
    return this.inner.close(opts);
  }
}

async function asyncDatabase(): Promise<{ db: SqlDatabase<AsyncEngine>; dir: string }> {
  const dir = path.join(root, String(n++));
  const sqljs = await openSqlDatabase(path.join(dir, "prosody.sqlite"));
  return { db: await SqlDatabase.over(new AsyncEngine(sqljs.engine)), dir };
}

storageConformance("sql over an asynchronous engine", async () => {
  const { db, dir } = await asyncDatabase();
  return {
    provider: createSqlProvider({ host: "example.com", db }),
    cleanup: async () => {
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}).run();

test("map reads through an asynchronous engine are cached, and a local write invalidates them", async () => {
  const { db } = await asyncDatabase();
  const map = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  await map.set(null, "k", { v: 1 });
  assert.equal(await map.get(null, "k"), { v: 1 });
  assert.equal(await map.get(null, "k"), { v: 1 });
  await map.set(null, "k", { v: 2 });
  assert.equal(await map.get(null, "k"), { v: 2 });
  assert.ok(db.engine.reads >= 3, "every get goes through one engine read");
  await db.close();
});

test("a read view cannot be used after its callback returned", async () => {
  const db = await openSqlDatabase(path.join(root, String(n++), "prosody.sqlite"));
  let kept: SqlReadView | undefined;
  db.engine.read((view) => (kept = view));
  assert.throws(() => kept!.get(`SELECT 1`), /read view used after its callback returned/);
  await db.close();
});

test.run();
