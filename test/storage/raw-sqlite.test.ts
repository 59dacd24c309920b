/**
 * RawStatements (direct calls into sql.js's SQLite exports) gives the same values, types and errors
 * as sql.js's own Statement API, including across WebAssembly memory growth and cache eviction.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { Database, SqlValue } from "sql.js";
import { RawStatements, type RawParam } from "../../src/storage/sqlite/raw-sqlite.js";
import { loadSqlJs } from "../../src/storage/sqlite/sqljs.js";

const { SQL, memory } = await loadSqlJs();

function open(maxStatements?: number): { db: Database; raw: RawStatements } {
  const db = new SQL.Database();
  db.exec(`CREATE TABLE t (a, b, c)`);
  return { db, raw: new RawStatements(SQL, memory, db, maxStatements) };
}

/** What sql.js itself returns for the same query. */
function viaSqlJs(db: Database, sql: string, params: RawParam[] = []): Record<string, SqlValue>[] {
  const st = db.prepare(sql);
  const out: Record<string, SqlValue>[] = [];
  try {
    if (params.length) st.bind(params);
    while (st.step()) out.push(st.getAsObject());
  } finally {
    st.free();
  }
  return out;
}

const TYPED = `SELECT a, typeof(a) AS ta, b, typeof(b) AS tb, c, typeof(c) AS tc FROM t ORDER BY rowid`;

test("parameters bind with sql.js's types: 32-bit integers INTEGER, other numbers REAL, '' TEXT, null NULL", () => {
  const { db, raw } = open();
  const rows: RawParam[][] = [
    [0, -1, 2147483647],
    [-2147483648, 2147483648, 1.5],
    [-0, 1e300, -4.25],
    ["", null, "x"],
    ["é ✓ 𝄞 \u0000 inside", "\u00ff", "plain"],
  ];
  for (const r of rows) raw.run(`INSERT INTO t VALUES (?, ?, ?)`, r);
  const mine = raw.rows(TYPED, []);
  // The same rows bound by sql.js into a second table must read back identically.
  db.exec(`CREATE TABLE u (a, b, c)`);
  for (const r of rows) db.run(`INSERT INTO u VALUES (?, ?, ?)`, r as SqlValue[]);
  assert.equal(mine, viaSqlJs(db, TYPED.replace("FROM t", "FROM u")));
  assert.equal(mine.map((r) => [r.ta, r.tb, r.tc]), [
    ["integer", "integer", "integer"],
    ["integer", "real", "real"],
    ["integer", "real", "real"],
    ["text", "null", "text"],
    ["text", "text", "text"],
  ]);
  assert.is(mine[4]!.a, "é ✓ 𝄞 \u0000 inside", "an embedded NUL survives (explicit lengths, not C strings)");
  raw.free();
  db.close();
});

test("rows(): first stops after one row; blobs, NULLs and REALs read as sql.js reads them", () => {
  const { db, raw } = open();
  db.exec(`INSERT INTO t VALUES (x'00ff10', NULL, 2.5), (1, 2, 3)`);
  const all = raw.rows(`SELECT * FROM t ORDER BY rowid`, []);
  assert.equal(all, viaSqlJs(db, `SELECT * FROM t ORDER BY rowid`));
  assert.ok(all[0]!.a instanceof Uint8Array);
  assert.equal([...(all[0]!.a as Uint8Array)], [0, 255, 16]);
  assert.equal(raw.rows(`SELECT * FROM t ORDER BY rowid`, [], true).length, 1);
  assert.equal(raw.rows(`SELECT * FROM t WHERE a = ?`, [42]), []);
  raw.free();
  db.close();
});

test("errors carry SQLite's message; the statement stays usable afterwards", () => {
  const { db, raw } = open();
  assert.throws(() => raw.run(`INSERT INTO nope VALUES (1)`), /no such table: nope/);
  assert.throws(() => raw.run(`SELEC 1`), /syntax error/);
  assert.throws(() => raw.run(`INSERT INTO t VALUES (?, ?, ?)`, [1, 2, 3, 4]), /column index out of range/);
  db.exec(`CREATE UNIQUE INDEX ua ON t (a)`);
  raw.run(`INSERT INTO t VALUES (?, ?, ?)`, [1, 2, 3]);
  assert.throws(() => raw.run(`INSERT INTO t VALUES (?, ?, ?)`, [1, 2, 3]), /UNIQUE constraint failed: t\.a/);
  raw.run(`INSERT INTO t VALUES (?, ?, ?)`, [2, 2, 3]);
  assert.equal(raw.rows(`SELECT count(*) AS n FROM t`, []), [{ n: 2 }]);
  raw.free();
  db.close();
});

test("no binding outlives its run: a statement run again without parameters sees NULLs", () => {
  const { db, raw } = open();
  const sql = `SELECT ? AS v`;
  assert.equal(raw.rows(sql, ["kept?"]), [{ v: "kept?" }]);
  assert.equal(raw.rows(sql, []), [{ v: null }]);
  raw.free();
  db.close();
});

test("a parameter far larger than the scratch area, and WebAssembly memory growth in between", () => {
  const { db, raw } = open();
  const big = "ü".repeat(3_000_000) + "end"; // 6 MB of UTF-8
  raw.run(`INSERT INTO t VALUES (?, ?, ?)`, [big, "small", 1]);
  const before = memory.buffer.byteLength;
  // Grow the module's memory (a large allocation inside SQLite) between our calls.
  db.exec(`CREATE TABLE g AS SELECT randomblob(40000000) AS x`);
  assert.ok(memory.buffer.byteLength > before, "the module's memory grew (so our view of it had to be renewed)");
  const [row] = raw.rows(`SELECT a, b, length(a) AS n FROM t`, []);
  assert.is(row!.a, big);
  assert.is(row!.b, "small");
  assert.is(row!.n, big.length);
  raw.run(`INSERT INTO t VALUES (?, ?, ?)`, ["after growth", "✓", 2]);
  assert.equal(raw.rows(`SELECT a, b FROM t WHERE c = 2`, []), [{ a: "after growth", b: "✓" }]);
  raw.free();
  db.close();
});

test("the statement cache is bounded and evicted statements are prepared again", () => {
  const { db, raw } = open(4);
  for (let i = 0; i < 20; i++) raw.run(`INSERT INTO t VALUES (${i}, ?, ?)`, [`v${i}`, i % 3]);
  assert.equal(raw.rows(`SELECT count(*) AS n, sum(a) AS s FROM t`, []), [{ n: 20, s: 190 }]);
  raw.free();
  db.close(); // close() succeeds: every statement of ours was finalized
});

test("misuse throws early: a closed database, an unknown parameter type", () => {
  const db = new SQL.Database();
  db.close();
  assert.throws(() => new RawStatements(SQL, memory, db), /no open handle/);
  const { db: db2, raw } = open();
  assert.throws(() => raw.run(`SELECT ?`, [{} as unknown as RawParam]), /unknown type/);
  assert.throws(() => raw.run(`   `), /Nothing to prepare/);
  raw.free();
  db2.close();
});

test.run();
