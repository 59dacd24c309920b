/**
 * The check at the end of a migration: for each host and store, the records of the input and of
 * the output are read again, counted, and hashed (SHA-256 over every user name and its record with
 * keys sorted, so the digest says "same content" whatever the row or key order). A store whose
 * counts or digests differ is reported with the first user that differs.
 */
import { createHash } from "node:crypto";
import type { KeyvalStore } from "../storage/types.js";
import { CONCURRENCY, eachLimited, type KeyvalJob } from "./copy.js";
import { fingerprint } from "./fingerprint.js";

export interface StoreSummary {
  /** Records (the host-wide one counts as one). */
  count: number;
  /** Hex SHA-256 of the content. */
  digest: string;
  /** user ("" for the host-wide record) → the record's fingerprint. */
  records: Map<string, string>;
}

async function summarize(store: KeyvalStore, users: readonly (string | null)[]): Promise<StoreSummary> {
  const records = new Map<string, string>();
  await eachLimited(users, CONCURRENCY, async (user) => {
    const rec = await store.get(user);
    if (rec !== undefined) records.set(user ?? "", fingerprint(rec, false));
  });
  const hash = createHash("sha256");
  for (const user of [...records.keys()].sort()) hash.update(`${JSON.stringify(user)}\t${records.get(user)}\n`);
  return { count: records.size, digest: hash.digest("hex"), records };
}

/** Lists the users a store has (the host-wide record as null). */
async function usersOf(store: KeyvalStore): Promise<(string | null)[]> {
  return [null, ...(await store.users()).filter((u) => u !== "")];
}

export interface Verdict {
  input: StoreSummary;
  output: StoreSummary;
  /** Undefined when the two agree; otherwise one line saying how they differ. */
  mismatch?: string;
}

export async function verifyJob(job: KeyvalJob): Promise<Verdict> {
  const input = await summarize(job.input, await usersOf(job.input));
  const output = await summarize(job.output, await usersOf(job.output));
  if (input.count === output.count && input.digest === output.digest) return { input, output };
  const who = (u: string) => (u === "" ? "the host-wide record" : `user ${JSON.stringify(u)}`);
  let detail = "";
  for (const [u, fp] of input.records) {
    const other = output.records.get(u);
    if (other === undefined) {
      detail = `${who(u)} is missing from the output`;
      break;
    }
    if (other !== fp) {
      detail = `${who(u)} differs`;
      break;
    }
  }
  if (!detail) for (const u of output.records.keys()) if (!input.records.has(u)) {
    detail = `the output has ${who(u)}, which the input does not have`;
    break;
  }
  return {
    input,
    output,
    mismatch: `host ${job.host} store ${job.store}: input has ${input.count} record(s), output ${output.count}; ${detail}`,
  };
}
