/**
 * Copying keyval stores from one end to the other, record by record, as prosody-migrator does
 * (the host-wide record first, then every user the input store lists; each record written with one
 * `set`, so the output holds the record whole or not at all).
 *
 * Key order: SQL keeps none (a record is rows; SQLite returns them in index order, PostgreSQL in
 * whatever order its plan gives), and an `internal` file is written in the record's key order. So
 * every record is written with its top-level keys sorted (`sortedRecord`): the same data always
 * gives the same file, and a file whose keys are in that order comes back byte for byte from any
 * round trip. Nested tables keep their order (SQL stores them as JSON text).
 *
 * Resuming and idempotence: before writing, the output's record is read; when it already holds the
 * same data in the same key order, nothing is written. A run stopped at any point (even by kill -9)
 * has written some records completely and others not at all; running it again writes only those
 * still missing or different, and a second complete run writes nothing.
 */
import type { KeyvalData, KeyvalStore, StorageProvider, StoreRecord } from "../storage/types.js";
import { setOwn } from "../storage/values.js";
import { fingerprint } from "./fingerprint.js";

/** One store of one host to move. */
export interface KeyvalJob {
  host: string;
  store: string;
  input: KeyvalStore;
  output: KeyvalStore;
  /** null (the host-wide record) and every user the input lists. */
  users: (string | null)[];
}

export interface CopyCounts {
  written: number;
  unchanged: number;
}

/** How many records are read and written at once (the drivers group or pool them). */
export const CONCURRENCY = 8;

/** Opens the keyval stores of a job and lists its records. */
export async function prepareJob(host: string, store: string, input: StorageProvider, output: StorageProvider): Promise<KeyvalJob> {
  const inStore = input.open(store, "keyval") as KeyvalStore;
  const outStore = output.open(store, "keyval") as KeyvalStore;
  // SQL lists the host-wide record as user "": it is the null user, copied once, first.
  const users = (await inStore.users()).filter((u) => u !== "").sort();
  return { host, store, input: inStore, output: outStore, users: [null, ...users] };
}

/** Runs `fn` over `items`, at most `limit` at a time; rejects with the first error after all settled. */
export async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { err: unknown } | undefined;
  const worker = async () => {
    while (next < items.length && !failed) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw failed.err;
}

/**
 * Copies one record: `onRecord` is told after each one. With `keepGoing`, a record that fails is
 * reported through `onError` and the rest goes on (its count is returned in `failed`).
 */
export async function copyJob(
  job: KeyvalJob,
  opts: { keepGoing: boolean; onRecord(user: string | null, written: boolean): void; onError(user: string | null, err: unknown): void },
): Promise<CopyCounts & { failed: number }> {
  const counts = { written: 0, unchanged: 0, failed: 0 };
  await eachLimited(job.users, CONCURRENCY, async (user) => {
    try {
      const data = sortedRecord(await job.input.get(user));
      const existing = await job.output.get(user);
      const same = fingerprint(data, true) === fingerprint(existing, true);
      if (!same) await job.output.set(user, data ?? null);
      // Absent on both sides (a host without a host-wide record) is not a record.
      if (data !== undefined || existing !== undefined) counts[same ? "unchanged" : "written"]++;
      opts.onRecord(user, !same);
    } catch (err) {
      if (!opts.keepGoing) throw err;
      counts.failed++;
      opts.onError(user, err);
    }
  });
  return counts;
}

/** The record with its top-level keys inserted in sorted order (see the header); a sequence as it is. */
export function sortedRecord(rec: KeyvalData | undefined): KeyvalData | undefined {
  if (rec === undefined || Array.isArray(rec)) return rec;
  const out: StoreRecord = {};
  for (const k of Object.keys(rec).sort()) setOwn(out, k, rec[k]!);
  return out;
}
