/**
 * What the SQL storage driver (sql.ts) needs from a database engine: statements over Prosody's
 * tables, run on the latest state, written atomically. sql.js (sql-sqljs.ts) is the first engine;
 * another (PostgreSQL through `pg`, for `sql = { driver = "PostgreSQL", … }`) implements the same
 * interface and is chosen in sql-database.ts, so plugins and the driver's row logic do not change.
 *
 * Everything the driver does atomically fits one shape, SqlUpdate: queries first, then a
 * synchronous decision on their rows. That is what an engine with synchronous reads (sql.js, under
 * its write lock) and one with a network round trip per query (BEGIN, SELECT … FOR UPDATE, …,
 * COMMIT) can both run without the driver knowing which it talks to.
 */

export type Awaitable<T> = T | Promise<T>;
export type SqlParam = string | number | null;
export type SqlStatement = readonly [sql: string, params?: readonly SqlParam[]];
export type SqlRow = Record<string, string | number | null | Uint8Array>;

/** A consistent look at the database, valid only during the read() callback it is given to. */
export interface SqlReadView {
  /**
   * Moves whenever the engine has taken in changes made elsewhere (another process, another
   * connection). A cache of reads stays valid while it stays put and its owner wrote nothing.
   */
  readonly foreignChanges: number;
  get(sql: string, params?: readonly SqlParam[]): Awaitable<SqlRow | undefined>;
  all(sql: string, params?: readonly SqlParam[]): Awaitable<SqlRow[]>;
}

/**
 * An atomic read-modify-write: `reads` run first, on the latest state, with every other writer
 * excluded until the end; `decide` (synchronous, no side effects: it may run again if the engine
 * retries) turns their rows into the statements to run in the same transaction and the result.
 * An error thrown by `decide` rolls everything back and rejects the update with it.
 */
export interface SqlUpdate<T> {
  reads: readonly SqlStatement[];
  decide(rows: SqlRow[][]): { run: readonly SqlStatement[]; result: T };
}

export interface SqlEngine {
  /** Names the database in messages (a file name; a connection without its password). */
  readonly label: string;
  /** Creates Prosody's tables and indexes where missing (in the engine's dialect). */
  ensureSchema(): Promise<void>;
  /**
   * Runs `fn` on the latest committed state; the view must not be kept past `fn`. `arg` is handed
   * to `fn` (hot paths pass their inputs instead of making a closure per call).
   */
  read<T>(fn: (view: SqlReadView) => T): T;
  read<T, A>(fn: (view: SqlReadView, arg: A) => T, arg: A): T;
  /** One atomic group of statements; resolves once durable. */
  execute(statements: readonly SqlStatement[]): Promise<void>;
  update<T>(u: SqlUpdate<T>): Promise<T>;
  /**
   * Whether another process (or another owner in this one) still has the database open; an
   * engine that cannot tell answers true.
   */
  othersOpen(): Promise<boolean>;
  /**
   * At server start (after a crash, say): fold what the engine keeps beside the database into it,
   * if no other process has it open (sql.js: leftover journal records). Optional; a failure loses
   * nothing.
   */
  foldLeftovers?(): Promise<void>;
  /** Bytes kept beside the database not yet folded into it (sql.js: its journal), for metrics. */
  journalBytes?(): number;
  /**
   * Ends this engine's use of the database. `fold`: leave the database complete without any
   * engine-specific side file (sql.js: fold the journal into the SQLite file); ignored by engines
   * that keep none.
   */
  close(opts: { fold: boolean }): Promise<void>;
}
