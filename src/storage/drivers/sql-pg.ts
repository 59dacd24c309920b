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
 * - U+0000: PostgreSQL's TEXT cannot hold it (the server refuses the statement), and Prosody
 *   (lua-dbi-postgresql passes parameters as C strings) silently cuts a key or value at it, so
 *   "a\0b" is stored, and found, as "a". We neither cut nor fail with the server's error: every
 *   statement of sql.ts compares its parameters with `=`, so a SELECT or DELETE with such a
 *   parameter matches no row (it is answered without asking the server: absent, nothing deleted),
 *   and a write that would store one is refused with UnstorableTextError before it starts.
 * - Failures: a server that cannot be reached (at open or later: refused, shut down, out of
 *   connections) rejects with StorageUnavailableError (HTTP 503 + Retry-After; the storage manager
 *   tries to open again later). At open, a wrong password, role or database name is SqlConfigError
 *   (the start stops: see core/sql-startup.ts); later, it is unavailable too. Other errors are the
 *   server's own, unchanged.
 * - A write whose COMMIT outcome is unknown (the connection lost while COMMIT was on its way) is
 *   never acknowledged: a write resolves only once the server has answered COMMIT; a lost
 *   connection rejects it (503), whether or not the server committed, and the connection is
 *   thrown away rather than given back to the pool. So a 201 always means committed; a 503 may
 *   hide a committed write (an invite created but not announced, harmless: it is never handed out).
 */
import { userInfo } from "node:os";
import type { SecureContext } from "node:tls";
import { extraCaContext } from "../../util/extra-ca.js";
// The `pg` module is loaded on first use (open): loading it costs every process ~0.2 s (it pulls
// in Node's fetch implementation), and most of ours (a SQLite prosodyctl) never use it.
import type pg from "pg";
import { StorageError, StorageUnavailableError } from "../types.js";
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

/** How long a connection may take to open (or to come free in the pool) before we answer 503. */
export const CONNECT_TIMEOUT_MS = 5_000;

/** Without storage_lock_timeout: the longest a statement waits for a lock. */
export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

/**
 * How much longer than the lock wait a statement may take before we stop waiting for its answer:
 * our statements are small and answer in milliseconds unless they wait for a lock (bounded by
 * lock_timeout) or the connection stalls (a half-open network path, a frozen server), which
 * nothing else would bound. A stalled write would hold every later write of this process behind it.
 */
export const QUERY_TIMEOUT_MARGIN_MS = 30_000;

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
    return p === null || p === undefined ? "NULL" : loadedPg().escapeLiteral(String(p));
  });
  if (used.n !== params.length) throw new Error(`statement has ${used.n} placeholders for ${params.length} parameters: ${sql}`);
  return out.replace(/;\s*$/, "");
}

/**
 * `pg` reads PGSSLMODE itself; when it asks for TLS in a prosodyctl whose NODE_EXTRA_CA_CERTS node
 * did not load (src/util/extra-ca.ts), the server's certificate is checked against those
 * certificates too, as it would have been.
 */
export function sslWithDeferredExtraCa(mode = process.env.PGSSLMODE): { ssl?: { secureContext: SecureContext } } {
  if (!["prefer", "require", "verify-ca", "verify-full"].includes(mode ?? "")) return {};
  const secureContext = extraCaContext();
  return secureContext ? { ssl: { secureContext } } : {};
}

let pgModule: typeof pg | undefined;
/** The `pg` module, loaded by PgEngine.open (before any statement of ours is written). */
function loadedPg(): typeof pg {
  if (!pgModule) throw new Error("sql-pg: the pg module is loaded by PgEngine.open, which has not run");
  return pgModule;
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
    // SQLSTATE: connection exception, insufficient resources, shutdown; a lock not got within lock_timeout.
    return /^(08|53|57P|55P03$)/.test(code);
  }
  // pg's own texts: a connection lost, or not made in time (pg: "timeout expired"; pg-pool:
  // "timeout exceeded when trying to connect").
  // "Query read timeout": no answer within query_timeout; the connection is not reused.
  return /Connection terminated|connection timeout|timeout expired|timeout exceeded when trying to connect|Query read timeout/i.test(err.message);
}

/**
 * A write would store text PostgreSQL cannot hold (U+0000) in a key, user, store or value: nothing
 * was written. Not a passing failure (not 503): the same write will always be refused.
 */
export class UnstorableTextError extends StorageError {
  override name = "UnstorableTextError";
}

const hasNul = (params: readonly SqlParam[] | undefined): boolean => !!params?.some((p) => typeof p === "string" && p.includes("\0"));

/** A statement that only finds (or deletes) rows equal to its parameters: with a U+0000 in one, none. */
const matchesOnly = (sql: string): boolean => /^\s*(SELECT|DELETE)\b/i.test(sql);

/** Throws UnstorableTextError when a statement that is not a SELECT or DELETE has a U+0000 parameter. */
/**
 * Write statements as literal SQL (inlineParams), leaving out those that cannot match any row
 * because a parameter they compare holds U+0000 (a DELETE of nothing). Call refuseNul first.
 */
function inlineWrites(statements: readonly SqlStatement[]): string[] {
  return statements.filter(([sql, params]) => !(hasNul(params as SqlParam[] | undefined) && matchesOnly(sql))).map(([sql, params]) => inlineParams(sql, params));
}

function refuseNul(label: string, statements: readonly SqlStatement[]): void {
  for (const [sql, params] of statements) {
    if (!matchesOnly(sql) && hasNul(params as SqlParam[] | undefined)) {
      throw new UnstorableTextError(`${label}: cannot store text containing U+0000 (PostgreSQL text cannot hold it); nothing was written`);
    }
  }
}

/**
 * Whether `err` is the server refusing who we are or what we ask for: a wrong password, an
 * unknown role, a login pg_hba.conf rejects (SQLSTATE class 28), a database that does not exist
 * (3D000). Waiting does not fix these: at open, they are a mistake in the `sql` option.
 */
export function isConfigError(err: unknown): boolean {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === "string" && /^(28|3D000$)/.test(code);
}

/**
 * The `sql` option names a database we may not use (isConfigError): the server stops its start,
 * and prosodyctl its command, with this one line rather than serving 503 until someone notices.
 */
export class SqlConfigError extends StorageError {
  override name = "SqlConfigError";
}

/**
 * After a successful open, both kinds are "not for now" (503 + Retry-After, the cause logged): a
 * restarted server or a connection cut, but also a password changed or a database dropped while we
 * run (the pool's new connections fail) — never a 500.
 */
function unavailable(label: string, err: unknown): unknown {
  return isUnreachable(err) || isConfigError(err) ? new StorageUnavailableError(`${label}: ${(err as Error).message || String(err)}`, { cause: err }) : err;
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
  static async open(target: PgTarget, opts: { lockTimeoutMs?: number; queryTimeoutMs?: number; log?: (level: "warn", message: string) => void } = {}): Promise<PgEngine> {
    const host = target.host ?? PG_DEFAULT_HOST;
    const port = target.port ?? PG_DEFAULT_PORT;
    pgModule ??= (await import("pg")).default;
    const pool = new pgModule.Pool({
      host,
      port,
      ...(target.database === undefined ? {} : { database: target.database }),
      // libpq's default user is the process's (after a privilege drop: prosody), not $USER.
      user: target.username ?? userInfo().username,
      ...(target.password === undefined ? {} : { password: target.password }),
      max: 4,
      idleTimeoutMillis: 10_000,
      // A server that accepts connections and never answers (hung, or a half-open network path)
      // would otherwise hold the start, a prosodyctl command or a request forever: give up and
      // say "unavailable" (503) instead. Also bounds the wait for a free pooled connection.
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      // storage_lock_timeout, as for our other drivers' locks: a statement waiting for a lock (our
      // write lock held by a stuck process, a table an admin locked) fails after it (55P03, so
      // 503) instead of holding the request for as long as the lock is held.
      lock_timeout: opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
      // Enforced here, not by the server, so it also bounds a connection that stopped answering:
      // the statement fails as "unavailable" (503) and its connection is dropped, not reused.
      query_timeout: opts.queryTimeoutMs ?? (opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS) + QUERY_TIMEOUT_MARGIN_MS,
      // Lets the kernel notice a peer that vanished while the connection sat idle in the pool.
      keepAlive: true,
      client_encoding: "UTF8",
      ...sslWithDeferredExtraCa(),
    });
    const label = `PostgreSQL ${target.username ?? ""}${target.username ? "@" : ""}${host}:${port}/${target.database ?? ""}`;
    // An idle connection dropped by the server must not crash the process; the next query reconnects.
    pool.on("error", (err) => opts.log?.("warn", `${label}: idle connection lost: ${err.message}`));
    try {
      await pool.query("SELECT 1");
    } catch (err) {
      await pool.end().catch(() => {});
      const message = `${label}: cannot connect: ${err instanceof Error ? err.message : String(err)}`;
      if (isUnreachable(err)) throw new StorageUnavailableError(message, { cause: err });
      throw isConfigError(err) ? new SqlConfigError(message, { cause: err }) : new Error(message, { cause: err });
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
    refuseNul(this.label, statements);
    const text = inlineWrites(statements);
    // Join the group still waiting for its turn (nothing of ours was queued after it), or start one.
    let group = this.waiting;
    if (!group) {
      const g: WriteGroup = { parts: [], done: undefined! };
      g.done = this.transaction((client) => {
        if (this.waiting === g) this.waiting = undefined; // what comes next goes after this group
        return this.runGroup(client, g.parts);
      }).catch((err: unknown) => {
        // No connection (the database down, the pool exhausted): the group failed before it
        // started. Later writes must start a group of their own, not join this failed one.
        if (this.waiting === g) this.waiting = undefined;
        throw err;
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
    const sent = u.reads.map(([sql, params]) => !(hasNul(params as SqlParam[] | undefined) && matchesOnly(sql)));
    const reads = { sent, text: message(["BEGIN", LOCK, ...u.reads.filter((_, i) => sent[i]).map(([sql, params]) => forUpdate(inlineParams(sql, params)))]) };
    return this.transaction(async (client) => {
      // One result per statement sent: BEGIN's, the lock's, then the reads' in order (a read that
      // cannot match, see matchesOnly, is answered here: no rows).
      const results = ([] as pg.QueryResult[]).concat(await client.query(reads.text));
      let next = 2;
      const rows = reads.sent.map((sent) => (sent ? (results[next++]!.rows as SqlRow[]) : []));
      const { run, result } = u.decide(rows);
      refuseNul(this.label, run); // before any of them: the transaction is rolled back
      await client.query(message([...inlineWrites(run), "COMMIT"]));
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
    if (hasNul(params) && matchesOnly(sql)) return [];
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
    // A checked-out client has no 'error' listener of the pool's: a connection lost between two
    // statements (a database restart, pg_terminate_backend) would be an unhandled 'error' event,
    // which ends the process. Noted here instead; the next statement fails, and the client is
    // not given back to the pool.
    const lost = (err: Error) => void (broken ??= err);
    client.on("error", lost);
    try {
      try {
        return await body(client);
      } catch (err) {
        // A connection that stopped answering would make ROLLBACK wait as long again: drop it
        // instead (the server rolls back when the connection closes).
        if (isUnreachable(err)) broken ??= err as Error;
        else await client.query("ROLLBACK").catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))));
        throw err;
      }
    } catch (err) {
      if (isUnreachable(err)) broken ??= err as Error; // the connection is not given back to the pool
      throw unavailable(this.label, err);
    } finally {
      client.release(broken);
      client.removeListener("error", lost);
    }
  }
}
