/** SQLite stores of a given size for the storage tests, made through our own DurableSqlite. */
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";

/**
 * Creates `file` holding table t (k, v) with `rows` rows of `valueBytes` each, folded into the
 * file (no journal left), so that opening it loads a real image. Returns `file`.
 */
export async function filledStore(file: string, rows: number, valueBytes = 100): Promise<string> {
  const db = await DurableSqlite.open(file);
  await db.execute([[`CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)`]]);
  for (let i = 0; i < rows; i += 500) {
    await db.execute(Array.from({ length: Math.min(500, rows - i) }, (_, j) => [`INSERT INTO t VALUES (?, ?)`, [`k${i + j}`, "x".repeat(valueBytes)]] as const));
  }
  await db.close({ compact: true });
  return file;
}
