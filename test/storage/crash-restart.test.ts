/**
 * After kill -9 of the server under load (with prosodyctl writers running alongside), a server
 * start and clean stop leave a complete prosody.sqlite and no journal: `sqlite3 prosody.sqlite`
 * alone has every acknowledged invite and key (issue 11, item 11). Real processes throughout.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadSqlJs } from "../../src/storage/sqlite/sqljs.js";
import { PROSODYCTL, prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { seededRandom } from "../helpers/seed.js";

const HAVE_SQLITE3 = spawnSync("sh", ["-c", "command -v sqlite3"], { stdio: "ignore" }).status === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const { random } = seededRandom();

/** Keys of one store, read from the file alone (with real sqlite3 when installed). */
async function keysInFile(db: string, store: string): Promise<Set<string>> {
  const sql = `SELECT key FROM prosody WHERE store = '${store}'`;
  if (HAVE_SQLITE3) {
    const r = spawnSync("sqlite3", ["-readonly", db, sql], { encoding: "utf8" });
    assert.is(r.status, 0, r.stderr);
    return new Set(r.stdout.split("\n").filter(Boolean));
  }
  const { SQL } = await loadSqlJs();
  const d = new SQL.Database(fs.readFileSync(db));
  try {
    return new Set((d.exec(sql)[0]?.values ?? []).map((v) => String(v[0])));
  } finally {
    d.close();
  }
}

function startServer(config: string): { proc: ChildProcess; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [PROSODYCTL, "--config", config, "--quiet", "start"], { cwd: path.dirname(config), stdio: "ignore" });
  return { proc, exited: new Promise((r) => proc.on("exit", (code) => r(code))) };
}

/** Waits until the server answers HTTP, with a request that opens no store. */
async function waitUp(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await rawRequest(port, "GET /nothing-here HTTP/1.1\r\nHost: example.com\r\n\r\n", { timeoutMs: 1000 })).status > 0) return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error("server did not come up");
}

test("kill -9 of the server under load, then start + clean stop: prosody.sqlite alone holds every acknowledged write, no journal", async () => {
  const port = await freePort();
  const { dir, config } = tempConfig(
    `data_path = "$DIR/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nstorage = "sql"\nVirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api" }\n`,
  );
  const db = path.join(dir, "data", "prosody.sqlite");
  const journal = `${db}.sqljs-journal`;
  const first = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
  assert.is(first.code, 0, first.stdout + first.stderr);
  const apiKey = first.stdout.trim();
  const tokens = new Set<string>();
  const keyIds = new Set<string>([apiKey.split("/")[0]!]);

  // HTTP load: invites created through the API; a 201 is an acknowledged write.
  let loading = false;
  const httpLoad = async () => {
    while (loading) {
      try {
        const r = await rawRequest(port, `GET /invites_api?key=${apiKey} HTTP/1.1\r\nHost: example.com\r\n\r\n`, { timeoutMs: 3000 });
        const m = /preauth=([^&;\s]+)/.exec(r.header("location") ?? "");
        if (r.status === 201 && m) tokens.add(decodeURIComponent(m[1]!));
      } catch {
        await sleep(20); // server down (killed): not acknowledged
      }
    }
  };
  // prosodyctl writers alongside: a printed key is an acknowledged write.
  let cliRunning = true;
  const cliWriter = async () => {
    while (cliRunning) {
      const r = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
      if (r.code === 0 && /^[^/\s]+\/\S+$/.test(r.stdout.trim())) keyIds.add(r.stdout.trim().split("/")[0]!);
    }
  };

  const writers = [cliWriter(), cliWriter()];
  for (let cycle = 0; cycle < 3; cycle++) {
    const server = startServer(config);
    await waitUp(port);
    loading = true;
    const load = Array.from({ length: 6 }, httpLoad);
    await sleep(1500 + random() * 1000);
    if (cycle === 2) {
      // the last crash with no prosodyctl running, so nothing folds the journal after it
      cliRunning = false;
      await Promise.all(writers);
      await sleep(500);
    }
    server.proc.kill("SIGKILL");
    await server.exited;
    loading = false;
    await Promise.all(load);
  }
  assert.ok(tokens.size > 20, `acknowledged invites: ${tokens.size}`);
  assert.ok(keyIds.size > 2, `acknowledged keys: ${keyIds.size}`);
  assert.ok(fs.existsSync(journal) && fs.statSync(journal).size > 16, "precondition: the crash left journal records");

  const server = startServer(config);
  await waitUp(port);
  server.proc.kill("SIGTERM");
  assert.is(await server.exited, 0);

  assert.not.ok(fs.existsSync(journal), "no journal after the clean stop");
  const inFile = await keysInFile(db, "invite_token");
  const missing = [...tokens].filter((t) => !inFile.has(t));
  assert.equal(missing.length, 0, `${missing.length} of ${tokens.size} acknowledged invites missing from prosody.sqlite`);
  const keysInDb = await keysInFile(db, "invite_api_keys");
  const missingKeys = [...keyIds].filter((k) => !keysInDb.has(k));
  assert.equal(missingKeys, [], "every acknowledged key is in prosody.sqlite");
});

test("the server folds leftover journal records at start when it is alone", async () => {
  const port = await freePort();
  const { dir, config } = tempConfig(
    `data_path = "$DIR/data"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nstorage = "sql"\nVirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api" }\n`,
  );
  const db = path.join(dir, "data", "prosody.sqlite");
  const first = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
  const apiKey = first.stdout.trim();
  // a server killed right after acknowledging one invite leaves it in the journal only
  let server = startServer(config);
  await waitUp(port);
  const r = await rawRequest(port, `GET /invites_api?key=${apiKey} HTTP/1.1\r\nHost: example.com\r\n\r\n`);
  assert.is(r.status, 201);
  const token = decodeURIComponent(/preauth=([^&;\s]+)/.exec(r.header("location")!)![1]!);
  server.proc.kill("SIGKILL");
  await server.exited;
  assert.not.ok((await keysInFile(db, "invite_token")).has(token), "precondition: only in the journal");
  server = startServer(config);
  await waitUp(port);
  try {
    assert.ok((await keysInFile(db, "invite_token")).has(token), "folded into the file at start");
  } finally {
    server.proc.kill("SIGTERM");
    await server.exited;
  }
});

test.run();
