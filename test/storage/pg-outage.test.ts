/**
 * PostgreSQL going away under our server (sql-pg.ts, core/sql-startup.ts), with spawned processes
 * and a private cluster:
 * - a restart of the database (`pg_ctl restart -m fast`, then `-m immediate`) and connections cut
 *   by `pg_terminate_backend` while requests flow: every answer is right or a 503 with Retry-After
 *   (never a 500, a wrong answer or a hang), the server recovers by itself, every 201 is stored;
 * - a COMMIT whose connection is lost is not answered 201 (nothing was stored);
 * - the server started while the database is down serves 503 and recovers when it comes up;
 * - a wrong password, role or database name stops the start (and a prosodyctl command) with one
 *   line; the password changed while the server runs is 503 until it is right again;
 * - prosodyctl with the database unreachable says so in one line, exit 1.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";
import { postgresMissing, startCluster, type PgCluster } from "../helpers/postgres.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";
import { skipIf } from "../helpers/skip.js";

const missing = postgresMissing();
const cluster: PgCluster | undefined = missing ? undefined : await startCluster();
const pgTest = skipIf(test, missing);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TOKEN = /([A-Za-z0-9_-]{24})$/;
// Load from one address: our rate limits off (they have their own tests, invites/api-limits).
const MODULES = `invites_api_plaintext_keys = true
invites_api_rate = false
invites_api_rate_per_ip = false
register_web_rate_per_ip = false
modules_enabled = { "http", "invites", "invites_api", "invites_page", "invites_register_web", "register_apps" }
VirtualHost "example.com"
`;
const sqlOption = (o: { database: string; username?: string; password?: string; host: string; port?: number }) =>
  `sql = { driver = "PostgreSQL", database = "${o.database}", username = "${o.username ?? "postgres"}"${o.password ? `, password = "${o.password}"` : ""}, host = "${o.host}"${o.port ? `, port = ${o.port}` : ""} }`;
const serverOn = (sql: string, opts?: { waitMs?: number }) => startServerProcess(`storage = "sql"\n${sql}\n${MODULES}`, opts);
const get = (port: number, path: string) => rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`, { timeoutMs: 10_000 });
const newKey = async (config: string) => (await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"])).stdout.trim();

/** Requests `path` until one is not a 503 (at most `ms`); the answer. */
async function untilServed(port: number, path: string, ms = 15_000): Promise<RawResponse> {
  const until = Date.now() + ms;
  for (;;) {
    const r = await get(port, path);
    if (r.status !== 503 || Date.now() > until) return r;
    await sleep(200);
  }
}

pgTest("database restarts (fast, immediate) and cut connections under load: right answers or 503 + Retry-After, then recovery", async () => {
  const target = await cluster!.createDatabase();
  const server = await serverOn(sqlOption(target));
  try {
    const key = await newKey(server.config);
    const first = await get(server.port, `/invites_api?key=${key}`);
    assert.is(first.status, 201);
    const known = TOKEN.exec(first.header("location")!)![1]!;
    const acked = new Set<string>([known]);
    const wrong: string[] = [];
    let answered = 0;
    let unavailable = 0;
    let stop = false;
    // Each answer is checked for what it must be: 201 with a new invite, the landing page of the
    // invite we know (never "invalid" while the database is away), or 503 with Retry-After.
    const check = (what: string, r: RawResponse | Error, ok: (r: RawResponse) => boolean) => {
      answered++;
      if (r instanceof Error) wrong.push(`${what}: ${r.message}`);
      else if (r.status === 503) {
        unavailable++;
        if (!/^\d+$/.test(r.header("retry-after") ?? "")) wrong.push(`${what}: 503 without Retry-After`);
      } else if (!ok(r)) wrong.push(`${what}: ${r.status} ${r.body.toString().slice(0, 120)}`);
    };
    const creator = async () => {
      while (!stop) {
        const r = await get(server.port, `/invites_api?key=${key}`).catch((e: Error) => e);
        check("create", r, (x) => x.status === 201);
        if (!(r instanceof Error) && r.status === 201) acked.add(TOKEN.exec(r.header("location")!)![1]!);
        await sleep(15);
      }
    };
    const reader = async () => {
      while (!stop) {
        const r = await get(server.port, `/invites_page?${known}`).catch((e: Error) => e);
        check("page", r, (x) => x.status === 200 && x.body.toString().includes(known));
        await sleep(15);
      }
    };
    const load = [creator(), creator(), reader()];
    const recovered = async (event: string) => {
      const r = await untilServed(server.port, `/invites_api?key=${key}`);
      assert.is(r.status, 201, `served again after ${event}, with no restart of ours`);
      acked.add(TOKEN.exec(r.header("location")!)![1]!);
    };
    try {
      await sleep(700);
      await cluster!.restart("fast");
      await recovered("pg_ctl restart -m fast");
      await sleep(700);
      await cluster!.restart("immediate");
      await recovered("pg_ctl restart -m immediate");
      await sleep(700);
      const admin = new pg.Client({ host: cluster!.dir, port: cluster!.port, user: "postgres", database: "postgres" });
      await admin.connect();
      try {
        for (let i = 0; i < 5; i++) {
          await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [target.database]);
          await sleep(150);
        }
      } finally {
        await admin.end();
      }
      await recovered("pg_terminate_backend");
      await sleep(500);
    } finally {
      stop = true;
      await Promise.all(load);
    }
    console.log(`\npg-outage: ${answered} answers under load, ${unavailable} of them 503, ${acked.size} invites acknowledged`);
    assert.equal(wrong, [], "every answer right or 503 with Retry-After");
    assert.ok(unavailable > 0, "the outages were seen by some requests");
    assert.is(server.child.exitCode, null, "the server is still running");
    const stored = new Set(cluster!.psql(target.database, `SELECT "key" FROM "prosody" WHERE "store" = 'invite_token'`).trim().split("\n"));
    assert.equal([...acked].filter((t) => !stored.has(t)), [], "every acknowledged invite is stored");
    assert.not.match(server.output(), /Error in HTTP handler|\n\s+at /);
  } finally {
    await server.stop();
  }
});

pgTest("a write whose COMMIT loses its connection is answered 503 with Retry-After, not 201, and stored nothing", async () => {
  const target = await cluster!.createDatabase();
  const server = await serverOn(sqlOption(target));
  try {
    const key = await newKey(server.config);
    // A deferred trigger runs inside COMMIT; while `doom` says so, it ends its own connection there.
    cluster!.psql(
      target.database,
      `CREATE TABLE doom (on_commit boolean NOT NULL); INSERT INTO doom VALUES (false);
       CREATE FUNCTION doom_commit() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN IF (SELECT on_commit FROM doom) THEN PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(5); END IF; RETURN NULL; END $$;
       CREATE CONSTRAINT TRIGGER doom_commit AFTER INSERT ON prosody DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION doom_commit();`,
    );
    const before = cluster!.psql(target.database, `SELECT count(*) FROM prosody WHERE store = 'invite_token'`).trim();
    cluster!.psql(target.database, `UPDATE doom SET on_commit = true`);
    for (let i = 0; i < 3; i++) {
      const r = await get(server.port, `/invites_api?key=${key}`);
      assert.is(r.status, 503, "lost at COMMIT: not acknowledged");
      assert.match(r.header("retry-after") ?? "", /^\d+$/);
    }
    assert.is(cluster!.psql(target.database, `SELECT count(*) FROM prosody WHERE store = 'invite_token'`).trim(), before, "nothing was committed");
    cluster!.psql(target.database, `UPDATE doom SET on_commit = false`);
    assert.is((await get(server.port, `/invites_api?key=${key}`)).status, 201, "the next write, on a new connection, is committed");
    assert.match(server.output(), /warn\tStorage unavailable in HTTP handler for 'GET example.com\/invites_api' \(503\): /);
    assert.not.match(server.output(), /Error in HTTP handler|\n\s+at /, "one line per failed request, no stack");
  } finally {
    await server.stop();
  }
});

pgTest("the server started while PostgreSQL is down serves 503 with Retry-After, and recovers when it comes up", async () => {
  const target = await cluster!.createDatabase();
  const server = await serverOn(sqlOption(target));
  const key = await newKey(server.config);
  await server.stop();
  await cluster!.down("fast");
  let down = true;
  let again: ServerProcess | undefined;
  try {
    again = await serverOn(sqlOption(target));
    assert.match(again.output(), /Could not open PostgreSQL .* at start .*ECONNREFUSED.*; it will be opened on first use/);
    for (const path of [`/invites_api?key=${key}`, `/invites_page?abcdefghijklmnopqrstuvwx`, `/register?t=abcdefghijklmnopqrstuvwx`]) {
      const r = await get(again.port, path);
      assert.is(r.status, 503, path);
      assert.match(r.header("retry-after") ?? "", /^\d+$/);
    }
    await cluster!.up();
    down = false;
    assert.is((await get(again.port, `/invites_api?key=${key}`)).status, 201, "the first request once the database is up");
  } finally {
    if (down) await cluster!.up(); // for the tests after this one
    await again?.stop();
  }
});

pgTest("a wrong password, role or database name stops the start and prosodyctl with one line; a password changed while running is 503", async () => {
  const target = await cluster!.createDatabase();
  cluster!.psql("postgres", `CREATE ROLE pwuser LOGIN PASSWORD 'right'; ALTER DATABASE "${target.database}" OWNER TO pwuser`);
  const hba = join(cluster!.dir, "data", "pg_hba.conf");
  writeFileSync(hba, `host all pwuser 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, "utf8")}`);
  cluster!.psql("postgres", "SELECT pg_reload_conf()");
  const cases: Array<[string, string, RegExp]> = [
    ["wrong password", sqlOption({ ...target, username: "pwuser", password: "wrong" }), /password authentication failed for user "pwuser"/],
    ["unknown database", sqlOption({ ...target, database: "nosuchdb" }), /database "nosuchdb" does not exist/],
    ["unknown role", sqlOption({ ...target, username: "nosuchrole" }), /role "nosuchrole" does not exist/],
  ];
  // The right password works (so the failures below are the password's). A password changed while
  // the server runs is not a config mistake at start: its new connections fail, 503 until fixed.
  const right = await serverOn(sqlOption({ ...target, username: "pwuser", password: "right" }));
  try {
    const key = await newKey(right.config);
    assert.is((await get(right.port, `/invites_api?key=${key}`)).status, 201);
    cluster!.psql("postgres", `ALTER ROLE pwuser PASSWORD 'changed'; SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'pwuser'`);
    for (let i = 0; i < 3; i++) {
      const r = await get(right.port, `/invites_api?key=${key}`);
      assert.is(r.status, 503, "password changed under us: unavailable, not a 500");
      assert.match(r.header("retry-after") ?? "", /^\d+$/);
    }
    cluster!.psql("postgres", `ALTER ROLE pwuser PASSWORD 'right'`);
    assert.is((await get(right.port, `/invites_api?key=${key}`)).status, 201, "and back once it is right again");
  } finally {
    assert.is(await right.stop(), 0);
  }
  for (const [what, sql, reason] of cases) {
    const failed = await serverOn(sql, { waitMs: 15_000 }).then(
      (s) => s.stop().then(() => undefined),
      (err: Error) => err.message,
    );
    assert.ok(failed, `${what}: the server did not start`);
    const lines = failed!.split("\n").filter((l) => l.trim() && !l.startsWith("server exited before listening") && !/starting: using config/.test(l));
    assert.is(lines.length, 1, `${what}: one line: ${failed}`);
    assert.match(lines[0]!, /^Failed to start: PostgreSQL .*: cannot connect: /);
    assert.match(lines[0]!, reason);
    const ctl = await prosodyctl(["--config", serverOnConfigOnly(sql).config, "mod_invites_api", "create", "example.com"]);
    assert.is(ctl.code, 1, what);
    assert.is(ctl.stderr, "", `${what}: nothing but the one line`);
    assert.match(ctl.stdout, reason);
    assert.is(ctl.stdout.trim().split("\n").length, 1);
  }
});

pgTest("prosodyctl with PostgreSQL unreachable (server stopped, no socket): one line, exit 1, no stack trace", async () => {
  const stopped = sqlOption({ database: "x", host: "127.0.0.1", port: await freePort() });
  const noSocket = sqlOption({ database: "x", host: join(cluster!.dir, "no-such-dir") });
  for (const [sql, reason] of [
    [stopped, /ECONNREFUSED/],
    [noSocket, /ENOENT .*no-such-dir\/\.s\.PGSQL\.5432/],
  ] as const) {
    const { config } = serverOnConfigOnly(sql);
    for (const args of [
      ["mod_invites_api", "create", "example.com"],
      ["mod_invites", "generate", "example.com"],
    ]) {
      const r = await prosodyctl(["--config", config, ...args]);
      assert.is(r.code, 1, args.join(" "));
      assert.is(r.stderr, "", "no warning or log line besides it");
      assert.is(r.stdout.trim().split("\n").length, 1, r.stdout);
      assert.match(r.stdout, /^PostgreSQL .*: cannot connect: /);
      assert.match(r.stdout, reason);
    }
  }
});

/** A config for prosodyctl (the server's config, without starting a server). */
function serverOnConfigOnly(sql: string): { config: string } {
  return tempConfig(`data_path = "$DIR"\nstorage = "sql"\n${sql}\n${MODULES}`);
}

test.run();
