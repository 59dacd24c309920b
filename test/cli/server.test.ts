/** `prosodyctl start` as a real process: config source logged, HTTP served, clean stop on signals. */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import initSqlJs from "sql.js";
import { PROSODYCTL, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest, waitForHttp } from "../helpers/http.js";
import { pluginDir } from "../helpers/plugins.js";
import { skip } from "../helpers/skip.js";

const PLUGINS = pluginDir({
  slow: `
    export default async function (module) {
      await module.depends("http");
      const store = await module.openStore("slow_writes", "map");
      module.provides("http", { route: {
        "GET": async (event) => {
          await new Promise((r) => setTimeout(r, 700));
          await store.set(null, "k" + event.request.url.query, { at: Date.now() });
          return "done";
        },
      } });
    }`,
});

interface Server {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Server {
  const child = spawn(process.execPath, [PROSODYCTL, ...args, "start"], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, output: () => out, exited };
}

async function waitForOutput(server: Server, text: string, ms = 10000): Promise<void> {
  const until = Date.now() + ms;
  while (!server.output().includes(text)) {
    if (Date.now() > until) throw new Error(`no "${text}" in the output:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function config() {
  const port = await freePort();
  const cfg = tempConfig(`
plugin_paths = { ${JSON.stringify(PLUGINS)} }
data_path = "$DIR/data"
http_ports = { ${port} }
storage = "sql"
modules_enabled = { "http", "slow", "roster", "saslauth" }
VirtualHost "example.com"
`);
  return { ...cfg, port };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`start serves HTTP and stops cleanly on ${signal}: the in-flight request finishes, the write is on disk`, async () => {
    const { dir, config: file, port } = await config();
    const srv = start(["--config", file], dir);
    await waitForHttp(port, "server", srv.output);
    await waitForOutput(srv, "Activated host: example.com");
    assert.match(srv.output(), `using config file ${file} (from --config)`);
    // Issue 13: one summary line for the modules skipped at start-up (each name at debug level).
    assert.match(srv.output(), "Skipped 2 module(s) this host does not implement (XMPP modules stay with Prosody): roster, saslauth");
    assert.not.match(srv.output(), "Module 'roster' is not implemented by this host");
    const inflight = rawRequest(port, `GET /slow?${signal} HTTP/1.1\r\nHost: example.com\r\n\r\n`, { timeoutMs: 10000 });
    await new Promise((r) => setTimeout(r, 200));
    srv.child.kill(signal);
    const res = await inflight;
    assert.is(res.status, 200);
    assert.is(res.body.toString(), "done");
    const code = await Promise.race([srv.exited, new Promise((r) => setTimeout(() => r("timeout"), 10000))]);
    assert.is(code, 0, srv.output());
    // Stopping folded the journal into the SQLite file: a plain SQLite reader sees the write.
    const SQL = await initSqlJs();
    const db = new SQL.Database(readFileSync(join(dir, "data", "prosody.sqlite")));
    const rows = db.exec(`SELECT key FROM prosody WHERE store = 'slow_writes'`);
    assert.equal(rows[0]?.values, [[`k${signal}`]]);
  });
}

test("PROSODY_CONFIG is used and logged when no --config is given", async () => {
  const { dir, config: file, port } = await config();
  const srv = start([], tmpdir(), { PROSODY_CONFIG: file });
  await waitForHttp(port, "server", srv.output);
  assert.match(srv.output(), `using config file ${file} (from PROSODY_CONFIG)`);
  srv.child.kill("SIGTERM");
  assert.is(await srv.exited, 0);
  assert.ok(existsSync(join(dir, "data")));
});

test("a config with no enabled VirtualHost fails to start with a clear message", async () => {
  const { dir, config: file } = tempConfig(`VirtualHost "x.example"\nenabled = false\n`);
  const srv = start(["--config", file], dir);
  assert.is(await srv.exited, 1);
  assert.match(srv.output(), "No enabled VirtualHost entries found in the config file.");
  assert.not.match(srv.output(), /\n\s+at /);
});

test("no config anywhere: the embedded default (localhost, SQLite under ./data, 127.0.0.1:5280)", async (ctx) => {
  const cwd = mkdtempSync(join(tmpdir(), "prosody-ts-embedded-"));
  const env = { PROSODY_CONFIG: "", PROSODY_TS_SYSTEM_CONFIG: "" };
  const srv = start([], cwd, env);
  try {
    // Another server on 5280 would answer a port probe: wait for this one to have started or failed.
    await waitForOutput(srv, "using the embedded default config");
    const until = Date.now() + 20_000;
    while (!/Activated host|Failed to start/.test(srv.output()) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    // Only a busy port is a reason to skip (the start then fails with that one line); any other
    // failure to listen is a failure of this test.
    if (/Failed to start: Cannot listen on 127\.0\.0\.1 port 5280 .*EADDRINUSE/.test(srv.output())) {
      return skip(ctx, "port 5280 is busy on this machine; the embedded default could not listen");
    }
    assert.match(srv.output(), "Activated host", srv.output());
    await waitForHttp(5280, "server", srv.output, 8000);
    const r = await rawRequest(5280, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert.is(r.status, 200);
    const api = await rawRequest(5280, "GET /invites_api HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert.is(api.status, 403, "mod_invites_api is enabled on localhost");
    // A key made by prosodyctl in the same directory lands in ./data/prosody.sqlite and works at once.
    const { prosodyctl } = await import("../helpers/cli.js");
    const key = await prosodyctl(["mod_invites_api", "create", "localhost"], { cwd, env });
    assert.is(key.code, 0, key.stdout + key.stderr);
    assert.ok(existsSync(join(cwd, "data", "prosody.sqlite")), "SQLite database under ./data");
    const ok = await rawRequest(5280, `GET /invites_api?key=${key.stdout.trim()} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
    assert.is(ok.status, 201);
    srv.child.kill("SIGTERM");
    assert.is(await srv.exited, 0);
  } finally {
    // A failed assertion must not leave the server holding 5280 for the rest of the suite.
    if (srv.child.exitCode === null && srv.child.signalCode === null) srv.child.kill("SIGKILL");
  }
});

test.run();
