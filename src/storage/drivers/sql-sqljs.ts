/**
 * The sql.js engine of the SQL driver: Prosody's SQLite file made durable and shared between our
 * processes by DurableSqlite (storage/sqlite/, see DESIGN.md there), plus this process's "open"
 * marker (presence.ts) that tells the last closer to fold the journal into the file.
 */
import { DurableSqlite, type DurableSqliteOptions, type DurableView } from "../sqlite/durable-db.js";
import { HEADER_SIZE as JOURNAL_HEADER_SIZE } from "../sqlite/journal.js";
import { Presence } from "../sqlite/presence.js";
import type { SqlEngine, SqlStatement, SqlUpdate } from "./sql-engine.js";

/** Prosody 0.12.3's SQLite DDL, statement by statement, byte for byte. */
export const PROSODY_SQLITE_DDL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);`,
  `CREATE INDEX IF NOT EXISTS "prosody_index" ON "prosody" ("host", "user", "store", "key");`,
  `CREATE TABLE IF NOT EXISTS "prosodyarchive" ("sort_id" INTEGER PRIMARY KEY AUTOINCREMENT, "host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "when" INTEGER NOT NULL, "with" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);`,
  `CREATE UNIQUE INDEX IF NOT EXISTS "prosodyarchive_index" ON "prosodyarchive" ("host", "user", "store", "key");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_with_when" ON "prosodyarchive" ("host", "user", "store", "with", "when");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_when" ON "prosodyarchive" ("host", "user", "store", "when");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_sort" ON "prosodyarchive" ("host", "user", "store", "sort_id");`,
];
const SCHEMA_OBJECTS = [
  "prosody",
  "prosody_index",
  "prosodyarchive",
  "prosodyarchive_index",
  "prosodyarchive_with_when",
  "prosodyarchive_when",
  "prosodyarchive_sort",
];

export class SqljsEngine implements SqlEngine {
  private constructor(
    /** The database itself (tests and tools use it directly). */
    readonly sqlite: DurableSqlite,
    /** Our "open" marker; undefined where the lock directory cannot be used (then we never fold). */
    private readonly presence: Presence | undefined,
  ) {}

  static async open(file: string, opts?: DurableSqliteOptions): Promise<SqljsEngine> {
    const sqlite = await DurableSqlite.open(file, opts);
    return new SqljsEngine(sqlite, await Presence.announce(sqlite.file));
  }

  get label(): string {
    return this.sqlite.file;
  }

  async ensureSchema(): Promise<void> {
    const present = new Set(this.sqlite.all(`SELECT "name" FROM "sqlite_master"`).map((r) => r.name));
    if (SCHEMA_OBJECTS.every((n) => present.has(n))) return;
    await this.sqlite.execute(PROSODY_SQLITE_DDL.map((sql) => [sql] as SqlStatement));
  }

  read<T>(fn: (view: DurableView) => T): T;
  read<T, A>(fn: (view: DurableView, arg: A) => T, arg: A): T;
  read<T, A>(fn: (view: DurableView, arg: A) => T, arg?: A): T {
    return this.sqlite.read(fn, arg as A);
  }

  execute(statements: readonly SqlStatement[]): Promise<void> {
    return this.sqlite.execute(statements);
  }

  /** Runs under the write lock on the latest state of every process: the reads see no other writer. */
  update<T>(u: SqlUpdate<T>): Promise<T> {
    return this.sqlite.transaction((tx) => {
      const rows = u.reads.map(([sql, params]) => tx.all(sql, params));
      const { run, result } = u.decide(rows);
      for (const [sql, params] of run) tx.run(sql, params);
      return result;
    });
  }

  async othersOpen(): Promise<boolean> {
    return this.presence ? this.presence.othersOpen() : true;
  }

  async foldLeftovers(): Promise<void> {
    if (this.sqlite.journalSize <= JOURNAL_HEADER_SIZE || (await this.othersOpen())) return;
    await this.sqlite.compact();
  }

  journalBytes(): number {
    return this.sqlite.journalSize;
  }

  async close(opts: { fold: boolean }): Promise<void> {
    try {
      await this.sqlite.close({ compact: opts.fold });
    } finally {
      this.presence?.close();
    }
  }
}
