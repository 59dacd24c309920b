/**
 * The PostgreSQL engine of the SQL driver (`sql = { driver = "PostgreSQL", … }`), through a `pg`
 * connection pool, on the tables real Prosody 0.12.3 creates (PROSODY_PG_DDL, recorded from it).
 *
 * - Reads: one pooled query each, on the latest committed state (READ COMMITTED). There is no read
 *   cache: other processes, other hosts and a real Prosody write the same database, and nothing
 *   tells us when; so every read view has a new `foreignChanges`, and sql-read-cache.ts never
 *   serves a row it read in an earlier view.
 * - Writes: `execute` and `update` run in one transaction on one connection (BEGIN … COMMIT; a
 *   failure rolls back), one after another in the order they were asked for, and resolve only
 *   after COMMIT. An `execute` is one message to the server (BEGIN, the lock, its statements,
 *   COMMIT: PostgreSQL's simple query protocol runs several statements per message), an `update`
 *   two (BEGIN, the lock and the locked reads; then the decided statements and COMMIT), so the
 *   database-wide lock below is held for the server's own work plus at most one round trip, never
 *   for one round trip per statement. Their parameters are therefore sent as quoted literals (the
 *   simple protocol has no parameters), escaped by `pg`; a quoted literal is untyped, as a
 *   parameter is, so the server reads it the same way. `execute`s made while an earlier
 *   transaction of ours is still running wait together and then go as one transaction (group
 *   commit: one lock, one COMMIT, one disk flush for all, still in their order); should one of
 *   them fail, the whole group is rolled back and each is run again alone, so each answers for
 *   itself.
 * - Exclusion: every write transaction of ours first takes one transaction-level advisory lock
 *   (WRITE_LOCK, held until COMMIT/ROLLBACK), so our writers — in every process using this database
 *   — run one after another, like the sql.js engine's write lock; `update`'s reads are also
 *   `SELECT … FOR UPDATE`, so a row they found is locked against writers that do not take the
 *   advisory lock (a real Prosody). One lock for the whole database rather than one per
 *   (host, store): the engine sees statements, not stores, and our writes are short and rare
 *   next to reads. Of two concurrent `take`s of one key, exactly one sees the row. PostgreSQL
 *   releases the lock only after COMMIT's disk flush (fsync on), so the flush time bounds how many
 *   write transactions all our processes together can commit per second; hence the groups above.
 * - Failures: a server that cannot be reached (at open or later: refused, shut down, out of
 *   connections) rejects with StorageUnavailableError (HTTP 503 + Retry-After; the storage manager
 *   tries to open again later); other errors are the server's own, unchanged.
 */
import { userInfo } from "node:os";
import pg from "pg";
import { StorageUnavailableError } from "../types.js";
import type { SqlEngine, SqlParam, SqlReadView, SqlRow, SqlStatement, SqlUpdate } from "./sql-engine.js";

/** Prosody 0.12.3's DDL on PostgreSQL, statement by statement, as it issues it (after `SET NAMES 'utf8'`). */
export const PROSODY_PG_DDL: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);`,
  `CREATE INDEX IF NOT EXISTS "prosody_index" ON "prosody" ("host", "user", "store", "key");`,
  `CREATE TABLE IF NOT EXISTS "prosodyarchive" ("sort_id" BIGSERIAL PRIMARY KEY, "host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "when" INTEGER NOT NULL, "with" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);`,
  `CREATE UNIQUE INDEX IF NOT EXISTS "prosodyarchive_index" ON "prosodyarchive" ("host", "user", "store", "key");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_with_when" ON "prosodyarchive" ("host", "user", "store", "with", "when");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_when" ON "prosodyarchive" ("host", "user", "store", "when");`,
  `CREATE INDEX IF NOT EXISTS "prosodyarchive_sort" ON "prosodyarchive" ("host", "user", "store", "sort_id");`,
];

/** The advisory lock our write transactions take (an arbitrary constant: "prosody" in ASCII, as a bigint). */
export const WRITE_LOCK = "31651020395209849";

/** Where a PostgreSQL database is (Prosody's option names; unset = libpq's defaults). */
export interface PgTarget {
  database?: string;
  username?: string;
  password?: string;
  /** A host name, or a directory holding the server's unix socket. */
  host?: string;
  port?: number;
}

/** libpq's (Debian's) defaults: the local socket directory, port 5432. */
export const PG_DEFAULT_HOST = "/var/run/postgresql";
export const PG_DEFAULT_PORT = 5432;

/** `sql` with each `?` placeholder outside quotes replaced by `by(n)` (n = 0, 1, …). */
function replacePlaceholders(sql: string, by: (n: number) => string): string {
  let out = "";
  let n = 0;
  let quote: string | undefined;
  for (const c of sql) {
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "?") {
      out += by(n++);
      continue;
    }
    out += c;
  }
  return out;
}

/** The statement with `?` placeholders numbered for PostgreSQL ($1, $2, …), outside quotes. */
export function numberPlaceholders(sql: string): string {
  return replacePlaceholders(sql, (n) => `$${n + 1}`);
}

/**
 * The statement with its parameters written in as literals: NULL, or the value's text quoted and
 * escaped by `pg` (an untyped literal, read by the server in context as a parameter would be).
 * Without a trailing semicolon, to be joined with others into one message.
 */
export function inlineParams(sql: string, params: readonly SqlParam[] = []): string {
  const used = { n: 0 };
  const out = replacePlaceholders(sql, (n) => {
    used.n = n + 1;
    if (n >= params.length) throw new Error(`statement has more placeholders than the ${params.length} parameters given: ${sql}`);
    const p = params[n];
    return p === null || p === undefined ? "NULL" : pg.escapeLiteral(String(p));
  });
  if (used.n !== params.length) throw new Error(`statement has ${used.n} placeholders for ${params.length} parameters: ${sql}`);
  return out.replace(/;\s*$/, "");
}

const LOCK = `SELECT pg_advisory_xact_lock(${WRITE_LOCK})`;
/** Statements as one message for the simple query protocol. */
const message = (statements: readonly string[]) => statements.join(";\n");

const converted = new Map<string, string>();
function pgSql(sql: string): string {
  let s = converted.get(sql);
  if (s === undefined) {
    s = numberPlaceholders(sql);
    if (converted.size < 1000) converted.set(sql, s);
  }
  return s;
}

/** SELECTs of an update lock the rows they find (a statement already locking is left alone). */
function forUpdate(sql: string): string {
  return /^\s*SELECT\b/i.test(sql) && !/\bFOR\s+UPDATE\b/i.test(sql) ? `${sql.replace(/;\s*$/, "")} FOR UPDATE` : sql;
}

/** Whether `err` says the server cannot be reached for now (rather than refusing a statement). */
export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") {
    if (/^E[A-Z]+$/.test(code)) return true; // a system error: ECONNREFUSED, ENOENT (no socket), ETIMEDOUT…
    return /^(08|53|57P)/.test(code); // SQLSTATE: connection exception, insufficient resources, shutdown
  }
  return /Connection terminated|connection timeout/i.test(err.message);
}

function unavailable(label: string, err: unknown): unknown {
  return isUnreachable(err) ? new StorageUnavailableError(`${label}: ${(err as Error).message || String(err)}`, { cause: err }) : err;
}

/** `execute`s that go to the server as one transaction; `done` gives each part's error or undefined. */
interface WriteGroup {
  parts: string[][];
  done: Promise<unknown[]>;
}

export class PgEngine implements SqlEngine {
  private views = 0;
  /** The end of the last transaction asked for (see transaction()). */
  private writes: Promise<unknown> = Promise.resolve();
  /** The group of `execute`s queued and not yet started, which the next `execute` joins. */
  private waiting: WriteGroup | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    readonly label: string,
  ) {}

  /** Connects (one query, so a wrong address or password fails here, not at the first request). */
  static async open(target: PgTarget, opts: { log?: (level: "warn", message: string) => void } = {}): Promise<PgEngine> {
    const host = target.host ?? PG_DEFAULT_HOST;
    const port = target.port ?? PG_DEFAULT_PORT;
    const pool = new pg.Pool({
      host,
      port,
      ...(target.database === undefined ? {} : { database: target.database }),
      // libpq's default user is the process's (after a privilege drop: prosody), not $USER.
      user: target.username ?? userInfo().username,
      ...(target.password === undefined ? {} : { password: target.password }),
      max: 4,
      idleTimeoutMillis: 10_000,
      client_encoding: "UTF8",
    });
    const label = `PostgreSQL ${target.username ?? ""}${target.username ? "@" : ""}${host}:${port}/${target.database ?? ""}`;
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    pool.on("error", (err) => opts.log?.("warn", `${label}: idle connection lost: ${err.message}`));
    try {
      await pool.query("SELECT 1");
    } catch (err) {
      await pool.end().catch(() => {});
      const message = `${label}: cannot connect: ${err instanceof Error ? err.message : String(err)}`;
      throw isUnreachable(err) ? new StorageUnavailableError(message, { cause: err }) : new Error(message, { cause: err });
    }
    return new PgEngine(pool, label);
  }

  async ensureSchema(): Promise<void> {
    // CREATE … IF NOT EXISTS is not safe against a concurrent CREATE on PostgreSQL: take our lock.
    await this.transaction((client) => client.query(message(["BEGIN", LOCK, ...PROSODY_PG_DDL.map((sql) => inlineParams(sql)), "COMMIT"])));
  }

  read<T>(fn: (view: SqlReadView) => T): T;
  read<T, A>(fn: (view: SqlReadView, arg: A) => T, arg: A): T;
  read<T, A>(fn: (view: SqlReadView, arg: A) => T, arg?: A): T {
    const view: SqlReadView = {
      foreignChanges: ++this.views, // never the same twice: no read is served from a cache
      get: (sql, params) => this.query(sql, params).then((rows) => rows[0]),
      all: (sql, params) => this.query(sql, params),
    };
    return fn(view, arg as A);
  }

  // async: a statement whose parameters do not fit rejects before any transaction starts; the
  // transaction is still queued synchronously, at the call, so writes keep their order.
  async execute(statements: readonly SqlStatement[]): Promise<void> {
    const text = statements.map(([sql, params]) => inlineParams(sql, params));
    // Join the group still waiting for its turn (nothing of ours was queued after it), or start one.
    let group = this.waiting;
    if (!group) {
      const g: WriteGroup = { parts: [], done: undefined! };
      g.done = this.transaction((client) => {
        if (this.waiting === g) this.waiting = undefined; // what comes next goes after this group
        return this.runGroup(client, g.parts);
      });
      this.waiting = group = g;
    }
    const i = group.parts.push(text) - 1;
    const failures = await group.done;
    if (failures[i]) throw failures[i];
  }

  /** A group's statements in one transaction; on a failure, each part again alone. Each part's error or undefined. */
  private async runGroup(client: pg.PoolClient, parts: readonly string[][]): Promise<unknown[]> {
    const alone = (part: readonly string[]) => message(["BEGIN", LOCK, ...part, "COMMIT"]);
    if (parts.length === 1) {
      await client.query(alone(parts[0]!));
      return [undefined];
    }
    try {
      await client.query(alone(parts.flat()));
      return parts.map(() => undefined);
    } catch (err) {
      if (isUnreachable(err)) throw err; // every part fails the same way (503)
      await client.query("ROLLBACK");
    }
    const failures: unknown[] = [];
    for (const part of parts) {
      try {
        await client.query(alone(part));
        failures.push(undefined);
      } catch (err) {
        if (isUnreachable(err)) throw err;
        await client.query("ROLLBACK");
        failures.push(err);
      }
    }
    return failures;
  }

  async update<T>(u: SqlUpdate<T>): Promise<T> {
    const reads = message(["BEGIN", LOCK, ...u.reads.map(([sql, params]) => forUpdate(inlineParams(sql, params)))]);
    return this.transaction(async (client) => {
      // One result per statement: BEGIN's, the lock's, then the reads' in order.
      const results = ([] as pg.QueryResult[]).concat(await client.query(reads));
      const { run, result } = u.decide(results.slice(2).map((r) => r.rows as SqlRow[]));
      await client.query(message([...run.map(([sql, params]) => inlineParams(sql, params)), "COMMIT"]));
      return result;
    });
  }

  /** Other processes may always be using a server database. */
  async othersOpen(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async query(sql: string, params?: readonly SqlParam[]): Promise<SqlRow[]> {
    try {
      return (await this.pool.query(pgSql(sql), params as SqlParam[] | undefined)).rows as SqlRow[];
    } catch (err) {
      throw unavailable(this.label, err);
    }
  }

  /**
   * Runs `body` in a transaction after every transaction this engine was asked for before it: our
   * writes apply in the order they were made (a set, a take, a set of one key), as with sql.js.
   * They would wait for each other on the advisory lock anyway.
   */
  private transaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    this.waiting = undefined; // a later execute must not join a group queued before this transaction
    const run = this.writes.then(() => this.runTransaction(body));
    this.writes = run.catch(() => {});
    return run;
  }

  /** `body` (which sends BEGIN, our write lock, …, COMMIT) — or, when it fails, ROLLBACK and the error. */
  private async runTransaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect().catch((err: unknown) => Promise.reject(unavailable(this.label, err)));
    let broken: Error | undefined;
    try {
      try {
        return await body(client);
      } catch (err) {
        await client.query("ROLLBACK").catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
        throw err;
      }
    } catch (err) {
      if (isUnreachable(err)) broken ??= err as Error; // the connection is not given back to the pool
      throw unavailable(this.label, err);
    } finally {
      client.release(broken);
    }
  }
}
