/**
 * The last of our processes to close an SQLite database folds the journal into the file, so the
 * file alone is complete for a real Prosody / sqlite3; while another process has it open, a
 * closing prosodyctl leaves the journal alone (cheap, and the server folds it when it stops).
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import initSqlJs from "sql.js";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PROSODYCTL, prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";

async function keysInFile(file: string): Promise<string[]> {
  const SQL = await initSqlJs();
  const db = new SQL.Database(readFileSync(file));
  try {
    const r = db.exec(`SELECT key FROM prosody WHERE store = 'invite_api_keys' ORDER BY key`);
    return (r[0]?.values ?? []).map((v) => String(v[0]));
  } finally {
    db.close();
  }
}

test("prosodyctl alone: its write is folded into prosody.sqlite on exit, no journal left", async () => {
  const { dir, config } = tempConfig(`data_path = "$DIR/data"\nstorage = "sql"\nVirtualHost "example.com"\n`);
  const r = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
  const id = r.stdout.split("/")[0]!;
  const db = join(dir, "data", "prosody.sqlite");
  assert.not.ok(existsSync(`${db}.sqljs-journal`));
  assert.equal(await keysInFile(db), [id]);
});

test("with the server holding the database open, prosodyctl leaves the journal; the server folds it on stop", async () => {
  const port = await freePort();
  const { dir, config } = tempConfig(
    `data_path = "$DIR/data"\nhttp_ports = { ${port} }\nstorage = "sql"\nVirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api" }\n`,
  );
  const first = (await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir })).stdout.trim();
  const server = spawn(process.execPath, [PROSODYCTL, "--config", config, "--quiet", "start"], { cwd: dir, stdio: "ignore" });
  const exited = new Promise((r) => server.on("exit", r));
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    try {
      // a request that opens the key store, so the server has the database open
      const res = await rawRequest(port, `GET /invites_api?key=${first} HTTP/1.1\r\nHost: example.com\r\n\r\n`, { timeoutMs: 500 });
      up = res.status === 201;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  assert.ok(up, "server answered");
  const second = (await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir })).stdout.split("/")[0]!;
  const db = join(dir, "data", "prosody.sqlite");
  assert.ok(existsSync(`${db}.sqljs-journal`), "journal kept while the server runs");
  assert.not.ok((await keysInFile(db)).includes(second), "not folded yet");
  server.kill("SIGTERM");
  await exited;
  assert.not.ok(existsSync(`${db}.sqljs-journal`));
  assert.equal((await keysInFile(db)).sort(), [first.split("/")[0]!, second].sort());
});

test.run();
