/**
 * mod_invites_register_api's single-use guarantee between processes: two servers on one data
 * directory (internal storage), parallel registrations with one single-use invite on both. Within
 * one process requests are also queued, so only here does the atomic claim decide: without it,
 * each process validates the invite and creates its account.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import type { KeyvalStore } from "../../src/storage/types.js";
import { PROSODYCTL, prosodyctl } from "../helpers/cli.js";
import { freePort, rawRequest, waitForHttp, type RawResponse } from "../helpers/http.js";

const HOST = "example.com";
const SERVERS = 2;
const POSTS_PER_SERVER = 6;

function post(port: number, body: object): Promise<RawResponse> {
  const json = JSON.stringify(body);
  return rawRequest(
    port,
    `POST /register_api/register HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
    { timeoutMs: 60_000 },
  );
}

test(`${SERVERS} servers × ${POSTS_PER_SERVER} parallel registrations with one single-use invite: exactly one 200 and one account`, async () => {
  const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", "prosody-ts-regapi-"));
  const data = path.join(dir, "data");
  const configs: Array<{ file: string; port: number }> = [];
  for (let i = 0; i < SERVERS; i++) {
    const port = await freePort();
    const file = path.join(dir, `server${i}.cfg.lua`);
    fs.writeFileSync(
      file,
      `run_as_root = true
data_path = ${JSON.stringify(data)}
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
storage = "internal"
log = { error = "*console" }
VirtualHost "${HOST}"
modules_enabled = { "http", "invites", "invites_register", "invites_register_api" }
`,
    );
    configs.push({ file, port });
  }
  const made = await prosodyctl(["--config", configs[0]!.file, "mod_invites", "generate", HOST], { cwd: dir });
  assert.is(made.code, 0, made.stdout + made.stderr);
  const token = /preauth=([A-Za-z0-9_-]+)/.exec(made.stdout)?.[1];
  assert.ok(token, made.stdout);

  const children: ChildProcess[] = configs.map((c) => spawn(process.execPath, [PROSODYCTL, "--config", c.file, "start"], { cwd: dir, stdio: "ignore" }));
  const exited = children.map((c) => new Promise((r) => c.on("exit", r)));
  try {
    await Promise.all(configs.map((c) => waitForHttp(c.port, "prosody-ts", () => "", 30_000)));
    const posts: Array<Promise<RawResponse>> = [];
    for (let i = 0; i < POSTS_PER_SERVER; i++) {
      for (const [n, c] of configs.entries()) posts.push(post(c.port, { username: `user${n}x${i}`, password: "pw", token }));
    }
    const statuses = (await Promise.all(posts)).map((r) => r.status);
    assert.is(statuses.filter((s) => s === 200).length, 1, String(statuses));
    assert.ok(statuses.every((s) => s === 200 || s === 404), String(statuses));
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await Promise.all(exited);
  }
  const accounts = createInternalProvider({ dataPath: data, host: HOST }).open("accounts", "keyval") as KeyvalStore;
  const users = await accounts.users();
  assert.is(users.length, 1, users.join(", "));
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
