/**
 * Waiting for PostgreSQL is bounded (sql-pg.ts's CONNECT_TIMEOUT_MS):
 * - an address that accepts connections and never answers (a hung server, a half-open network
 *   path): opening the database gives up, so the server still starts and answers 503 with
 *   Retry-After, and prosodyctl says so in one line — no hang;
 * - every pooled connection busy (here: blocked behind a table lock someone else holds): a request
 *   that cannot get one in time is "unavailable" (503), not an unknown error (500);
 * - a statement waiting for a lock (our write lock held by a stuck process, a table an admin
 *   locked) gives up after storage_lock_timeout: "unavailable", nothing written;
 * - a connection that stops answering mid-use (a frozen network path) gives up after the query
 *   timeout, is dropped, and does not hold later writes behind it.
 */
import { connect, createServer, type Socket } from "node:net";
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { rawRequest } from "../helpers/http.js";
import { startServerProcess } from "../helpers/server-process.js";
import { createSqlProvider } from "../../src/storage/drivers/sql.js";
import { SqlDatabase } from "../../src/storage/drivers/sql-database.js";
import { CONNECT_TIMEOUT_MS, PgEngine, WRITE_LOCK } from "../../src/storage/drivers/sql-pg.js";
import type { MapStore } from "../../src/storage/types.js";
import { postgresMissing, startCluster } from "../helpers/postgres.js";
import { skipIf } from "../helpers/skip.js";

const MODULES = `invites_api_plaintext_keys = true
modules_enabled = { "http", "invites", "invites_api", "invites_page", "register_apps" }
VirtualHost "example.com"
`;

test("a database address that never answers: the server starts, 503 with Retry-After; prosodyctl: one line, exit 1", async () => {
  const held: Socket[] = [];
  const blackhole = createServer((s) => void held.push(s)); // accepts, reads, never writes
  await new Promise<void>((r) => blackhole.listen(0, "127.0.0.1", r));
  const port = (blackhole.address() as { port: number }).port;
  const sql = `storage = "sql"\nsql = { driver = "PostgreSQL", database = "x", username = "postgres", host = "127.0.0.1", port = ${port} }\n${MODULES}`;
  try {
    const server = await startServerProcess(sql, { waitMs: 30_000 });
    try {
      assert.match(server.output(), /Could not open PostgreSQL postgres@127\.0\.0\.1:\d+\/x at start \(.*timeout.*\); it will be opened on first use/);
      const started = Date.now();
      const r = await rawRequest(server.port, "GET /invites_api?key=abc/def HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", { timeoutMs: 20_000 });
      assert.is(r.status, 503);
      assert.match(r.header("retry-after") ?? "", /^\d+$/);
      assert.ok(Date.now() - started < 15_000, "answered within the connect timeout, not hung");
    } finally {
      await server.stop();
    }
    const { config } = tempConfig(`data_path = "$DIR"\n${sql}`);
    const ctl = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"]);
    assert.is(ctl.code, 1);
    assert.is(ctl.stderr, "");
    assert.match(ctl.stdout, /^PostgreSQL postgres@127\.0\.0\.1:\d+\/x: cannot connect: .*timeout.*\n$/);
  } finally {
    for (const s of held) s.destroy();
    blackhole.close();
  }
});

skipIf(test, postgresMissing())("every pooled connection busy: the request waiting for one is 'unavailable' after the timeout", async () => {
  const cluster = await startCluster();
  const target = await cluster.createDatabase();
  const db = await SqlDatabase.over(await PgEngine.open(target));
  const map = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  await map.set(null, "k", "v");
  const locker = new pg.Client({ host: cluster.dir, port: cluster.port, user: "postgres", database: target.database });
  await locker.connect();
  try {
    await locker.query(`BEGIN; LOCK TABLE "prosody" IN ACCESS EXCLUSIVE MODE`);
    const started = Date.now();
    const reads = Array.from({ length: 5 }, () => map.get(null, "k").then((v) => v, (e: Error) => e));
    const fifth = await Promise.race([reads[4]!, new Promise((r) => setTimeout(() => r("still waiting"), CONNECT_TIMEOUT_MS + 5000))]);
    assert.is((fifth as Error).name, "StorageUnavailableError", String(fifth));
    assert.ok(Date.now() - started >= CONNECT_TIMEOUT_MS - 100);
    await locker.query("COMMIT");
    for (const r of (await Promise.all(reads)).slice(0, 4)) assert.is(r, "v", "the four that had a connection read once the lock went");
  } finally {
    await locker.end();
    await db.close();
    cluster.stop();
  }
});

skipIf(test, postgresMissing())("a lock held elsewhere: reads and writes give up after storage_lock_timeout as 'unavailable'", async () => {
  const cluster = await startCluster();
  const target = await cluster.createDatabase();
  const db = await SqlDatabase.over(await PgEngine.open(target, { lockTimeoutMs: 1000 }));
  const map = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  await map.set(null, "k", "v");
  const other = new pg.Client({ host: cluster.dir, port: cluster.port, user: "postgres", database: target.database });
  await other.connect();
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: Error) => e);
  try {
    // Our write lock, held by a process that does not let go.
    await other.query(`SELECT pg_advisory_lock(${WRITE_LOCK})`);
    let started = Date.now();
    const write = await failure(map.set(null, "k2", "v2"));
    assert.is(write?.name, "StorageUnavailableError", String(write));
    assert.match(write!.message, /lock timeout/);
    assert.ok(Date.now() - started >= 900);
    assert.is(await failure(map.take!(null, "k")).then((e) => e?.name), "StorageUnavailableError");
    await other.query(`SELECT pg_advisory_unlock(${WRITE_LOCK})`);
    assert.is(await map.get(null, "k"), "v", "the refused take took nothing");
    assert.is(await map.get(null, "k2"), undefined, "the refused set wrote nothing");
    // A table locked by someone else: reads give up too.
    await other.query(`BEGIN; LOCK TABLE "prosody" IN ACCESS EXCLUSIVE MODE`);
    started = Date.now();
    assert.is((await failure(map.get(null, "k")))?.name, "StorageUnavailableError");
    assert.ok(Date.now() - started < 5000);
    await other.query("COMMIT");
    await map.set(null, "k2", "v2");
    assert.is(await map.get(null, "k2"), "v2", "usable again once the lock is gone");
  } finally {
    await other.end();
    await db.close();
    cluster.stop();
  }
});

skipIf(test, postgresMissing())("a connection that stops answering: the statement gives up as 'unavailable', later ones use a new connection", async () => {
  const cluster = await startCluster();
  const target = await cluster.createDatabase();
  // A TCP relay that can go silent in both directions without closing anything: a half-open path.
  let frozen = false;
  const sockets: Socket[] = [];
  const relay = createServer((client) => {
    const upstream = connect(cluster.port, "127.0.0.1");
    sockets.push(client, upstream);
    client.on("data", (d) => void (frozen || upstream.write(d)));
    upstream.on("data", (d) => void (frozen || client.write(d)));
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on("error", () => b.destroy());
      a.on("close", () => b.destroy());
    }
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  const port = (relay.address() as { port: number }).port;
  const db = await SqlDatabase.over(await PgEngine.open({ ...target, host: "127.0.0.1", port }, { lockTimeoutMs: 500, queryTimeoutMs: 1500 }));
  const map = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: Error) => e);
  try {
    await map.set(null, "k", "v");
    frozen = true;
    const started = Date.now();
    const [write, queued, read] = await Promise.all([failure(map.set(null, "k2", "v2")), failure(map.set(null, "k3", "v3")), failure(map.get(null, "k"))]);
    const took = Date.now() - started;
    for (const e of [write, read]) assert.is(e?.name, "StorageUnavailableError", String(e));
    assert.match(write!.message, /timeout/);
    assert.ok(took >= 1400 && took < 10_000, `gave up after the query timeout (${took} ms)`);
    frozen = false;
    // The write queued behind the stalled one was not held for ever: it failed or went through.
    assert.ok(queued === undefined || queued.name === "StorageUnavailableError", String(queued));
    await map.set(null, "k4", "v4");
    assert.is(await map.get(null, "k4"), "v4", "usable again on a fresh connection");
    assert.is(await map.get(null, "k"), "v");
  } finally {
    await db.close().catch(() => {});
    for (const s of sockets) s.destroy();
    relay.close();
    cluster.stop();
  }
});

skipIf(test, postgresMissing())("a write that got no connection (database down) does not fail the writes made after it is back", async () => {
  const cluster = await startCluster();
  const target = await cluster.createDatabase();
  const db = await SqlDatabase.over(await PgEngine.open(target));
  const map = createSqlProvider({ host: "example.com", db }).open("m", "map") as MapStore;
  try {
    await map.set(null, "k", "v");
    await cluster.down("immediate");
    const err = await map.set(null, "k2", "v2").then(() => undefined, (e: Error) => e);
    assert.is(err?.name, "StorageUnavailableError", String(err));
    await cluster.up();
    await map.set(null, "k3", "v3");
    assert.is(await map.get(null, "k3"), "v3");
    assert.is(await map.get(null, "k2"), undefined, "the refused write wrote nothing");
  } finally {
    await db.close().catch(() => {});
    cluster.stop();
  }
});

test.run();
