/**
 * U+0000 on PostgreSQL (sql-pg.ts): TEXT cannot hold it, and Prosody (lua-dbi-postgresql) cuts a
 * key or value at it. Ours: a lookup with it finds nothing (not the cut row), a write with it is
 * refused with UnstorableTextError and writes nothing, a table value keeps it (JSON escapes it);
 * over HTTP, a key, token or form field with it is an ordinary "not found"/"invalid", never a 5xx.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createSqlProvider } from "../../src/storage/drivers/sql.js";
import { SqlDatabase } from "../../src/storage/drivers/sql-database.js";
import { PgEngine } from "../../src/storage/drivers/sql-pg.js";
import type { KeyvalStore, MapStore } from "../../src/storage/types.js";
import { prosodyctl } from "../helpers/cli.js";
import { rawRequest } from "../helpers/http.js";
import { postgresMissing, startCluster, type PgCluster } from "../helpers/postgres.js";
import { startServerProcess } from "../helpers/server-process.js";
import { skipIf } from "../helpers/skip.js";

const missing = postgresMissing();
const cluster: PgCluster | undefined = missing ? undefined : await startCluster();
const pgTest = skipIf(test, missing);
const rejection = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Error);

pgTest("the store API: lookups with U+0000 find nothing, writes with it are refused and write nothing", async () => {
  const target = await cluster!.createDatabase();
  const db = await SqlDatabase.over(await PgEngine.open(target));
  const provider = createSqlProvider({ host: "example.com", db });
  const map = provider.open("invite_token", "map") as MapStore;
  const kv = provider.open("accounts", "keyval") as KeyvalStore;
  try {
    await map.set(null, "a", "the row Prosody would find for a\\0b");
    assert.is(await map.get(null, "a\0b"), undefined, "not the row cut at U+0000");
    assert.is(await map.take!(null, "a\0b"), undefined);
    assert.is(await map.get(null, "a"), "the row Prosody would find for a\\0b", "a take with U+0000 removed nothing");
    await map.set(null, "a\0b", undefined); // a delete of what cannot exist: nothing to do
    assert.equal([...(await map.getAll("a\0b")).entries()], []);
    assert.is(await kv.get("u\0v"), undefined);

    for (const write of [map.set(null, "k\0", "v"), map.set(null, "k", "v\0w"), map.set("u\0", "k", "v"), kv.set("u\0v", { password: "x" }), kv.setIfAbsent("x", { password: "p\0" })]) {
      const err = await rejection(write);
      assert.is(err?.name, "UnstorableTextError", String(err));
      assert.match(err!.message, /U\+0000/);
    }
    await kv.set("x", { password: "before" });
    assert.is((await rejection(kv.set("x", { password: "p\0w" })))?.name, "UnstorableTextError");
    assert.equal(await kv.get("x"), { password: "before" }, "a refused keyval set deleted nothing");
    assert.is(cluster!.psql(target.database, `SELECT count(*) FROM "prosody"`).trim(), "2");

    // Inside a table value it is JSON-escaped: stored and read back as it was.
    await map.set(null, "t", { note: "a\0b" });
    assert.equal(await map.get(null, "t"), { note: "a\0b" });
  } finally {
    await db.close();
  }
});

pgTest("HTTP: U+0000 in an API key, an invite token or form fields is refused like any bad input, never a 5xx", async () => {
  const target = await cluster!.createDatabase();
  const server = await startServerProcess(
    `storage = "sql"
sql = { driver = "PostgreSQL", database = "${target.database}", username = "postgres", host = "${target.host}", port = ${target.port} }
invites_api_plaintext_keys = true
modules_enabled = { "http", "invites", "invites_api", "invites_page", "invites_register_web", "register_apps" }
VirtualHost "example.com"
`,
  );
  try {
    const get = (path: string) => rawRequest(server.port, `GET ${path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`);
    const post = (token: string, fields: Record<string, string>) => {
      const body = new URLSearchParams(fields).toString();
      return rawRequest(
        server.port,
        `POST /register?t=${encodeURIComponent(token)} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    };
    const key = (await prosodyctl(["--config", server.config, "mod_invites_api", "create", "example.com"])).stdout.trim();
    const [id, secret] = key.split("/") as [string, string];
    for (const k of [`${id}%00/${secret}`, `${id}/${secret}%00`, `%00`, `a%00b/c`]) assert.is((await get(`/invites_api?key=${k}`)).status, 403, k);
    assert.is((await get(`/register?t=abcdefghijklmnopqrstuvw%00`)).status, 303, "an unknown invite: to the invalid-invite page");
    assert.is((await get(`/invites_page?abcdefghijklmnopqrstuvw%00`)).status, 200);
    const created = await get(`/invites_api?key=${key}`);
    assert.is(created.status, 201);
    const token = /([A-Za-z0-9_-]{24})$/.exec(created.header("location")!)![1]!;
    assert.is((await post(`${token}\0`, { user: "zed", password: "longpassword", token: `${token}\0` })).status < 500, true);
    const badName = await post(token, { user: "a\0b", password: "longpassword", token });
    assert.is(badName.status, 200);
    assert.match(badName.body.toString(), /invalid characters/);
    const ok = await post(token, { user: "alice", password: "longpassword", token });
    assert.match(ok.body.toString(), /Congratulations/, "the invite was still valid after the refused attempts");
    assert.not.match(server.output(), /Error in HTTP handler/);
  } finally {
    await server.stop();
  }
});

test.run();
