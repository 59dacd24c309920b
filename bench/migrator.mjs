#!/usr/bin/env node
/**
 * The migrator on a 100k-invite store: internal → PostgreSQL → SQLite → internal with the built
 * prosody-migrator-ts (one process per leg, as a user runs it), each leg timed, then the .dat
 * files compared byte for byte with the originals, and a second internal → PostgreSQL run (nothing
 * to write) timed.
 *
 * Run:   npm run build && node bench/migrator.mjs
 * Env:   BENCH_INVITES=100000, BENCH_USERS=1000 (accounts beside the invites)
 * Needs root and PostgreSQL's server binaries (a private cluster, as the tests start). Not a test:
 * it prints figures and whether the round trip was identical.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register();
const here = path.dirname(fileURLToPath(import.meta.url));
const { postgresMissing, startCluster } = await import(path.join(here, "../test/helpers/postgres.ts"));
const { migratorConfig, seedInternal, treeBytes, MIGRATOR } = await import(path.join(here, "../test/helpers/migrator.ts"));

const INVITES = Number(process.env.BENCH_INVITES ?? 100_000);
const USERS = Number(process.env.BENCH_USERS ?? 1000);
const missing = postgresMissing();
if (missing) {
  console.error(`bench/migrator: ${missing}`);
  process.exit(1);
}
const cluster = await startCluster();
const t = await cluster.createDatabase();
const { dir, config } = migratorConfig(`
local d = "$DIR"
files { type = "internal", path = d .. "/a" }
pg { type = "sql", driver = "PostgreSQL", database = "${t.database}", username = "${t.username}", host = "${t.host}", port = ${t.port} }
lite { type = "sql", driver = "SQLite3", database = d .. "/prosody.sqlite" }
back { type = "internal", path = d .. "/b" }
`);
let t0 = performance.now();
await seedInternal(path.join(dir, "a"), INVITES, USERS);
const size = fs.statSync(path.join(dir, "a/example%2ecom/invite_token.dat")).size;
console.log(`seeded ${INVITES} invites (invite_token.dat ${(size / 1e6).toFixed(1)} MB) and ${USERS} accounts in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

const leg = (from, to) => {
  t0 = performance.now();
  const r = spawnSync(process.execPath, [MIGRATOR, "--root", "--config", config, from, to], { encoding: "utf8", maxBuffer: 1 << 26 });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${from} → ${to} failed: ${r.stdout}${r.stderr}`);
  const summary = /\t(\d+ record\(s\) written, \d+ already up to date)/.exec(r.stdout)?.[1];
  console.log(`${`${from} → ${to}`.padEnd(16)} ${s.toFixed(1).padStart(6)} s   ${summary}`);
  return s;
};
let total = 0;
total += leg("files", "pg");
total += leg("pg", "lite");
total += leg("lite", "back");
console.log(`round trip        ${total.toFixed(1).padStart(6)} s (each leg includes its verification read of input and output)`);
const a = treeBytes(path.join(dir, "a"));
const b = treeBytes(path.join(dir, "b"));
const same = a.size === b.size && [...a].every(([f, bytes]) => b.get(f)?.equals(bytes));
console.log(`.dat files byte-identical after the round trip: ${same ? "yes" : "NO"} (${a.size} files)`);
leg("files", "pg");
fs.rmSync(dir, { recursive: true, force: true });
cluster.stop();
process.exit(same ? 0 : 1);
