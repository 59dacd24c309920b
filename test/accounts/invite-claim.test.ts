/**
 * Issue #11 item 1: one single-use invite registers exactly one account, whatever runs at the same
 * time — several server processes on one data directory, many parallel POSTs each, and our CLI
 * writing the same invite store — for internal and sql storage. Before the fix every process
 * validated the invite, created its account and consumed the invite afterwards: several accounts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import { createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import type { KeyvalStore } from "../../src/storage/types.js";
import { verifyScramPassword } from "../../src/util/scram.js";
import { PROSODYCTL, prosodyctl } from "../helpers/cli.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";

const HOST = "example.com";
const SERVERS = 3;
const POSTS_PER_SERVER = 8;

interface Server {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<unknown>;
}

function startServer(config: string, cwd: string, port: number): Server {
  const child = spawn(process.execPath, [PROSODYCTL, "--config", config, "start"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise((r) => child.on("exit", r));
  return { child, port, output: () => out, exited };
}

async function waitForPort(srv: Server, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const r = await rawRequest(srv.port, `GET /register HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`, { timeoutMs: 1000 });
      if (r.status !== 404) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server on ${srv.port} did not come up:\n${srv.output()}`);
}

function post(port: number, fields: Record<string, string>): Promise<RawResponse> {
  const body = new URLSearchParams(fields).toString();
  return rawRequest(
    port,
    `POST /register HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    { timeoutMs: 60_000 },
  );
}

/** Runs `read` on keyval store `store` of the data directory (after the servers have stopped). */
async function withStore<T>(storage: "internal" | "sql", data: string, store: string, read: (kv: KeyvalStore) => Promise<T>): Promise<T> {
  if (storage === "internal") return read(createInternalProvider({ dataPath: data, host: HOST }).open(store, "keyval") as KeyvalStore);
  const db = await openSqlDatabase(path.join(data, "prosody.sqlite"));
  try {
    return await read(createSqlProvider({ host: HOST, db }).open(store, "keyval") as KeyvalStore);
  } finally {
    await db.close();
  }
}

/** One config per server: same data directory, own HTTP port. */
async function writeConfigs(dir: string, data: string, storage: "internal" | "sql"): Promise<Array<{ file: string; port: number }>> {
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
storage = ${JSON.stringify(storage)}
log = { error = "*console" }
VirtualHost "${HOST}"
modules_enabled = { "invites", "invites_register", "invites_register_web", "http" }
password_policy = { length = 4 }
`,
    );
    configs.push({ file, port });
  }
  return configs;
}

for (const storage of ["internal", "sql"] as const) {
  test(`${storage}: ${SERVERS} servers × ${POSTS_PER_SERVER} parallel POSTs with one single-use invite (CLI writing too) create exactly one account`, async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", `prosody-ts-claim-${storage}-`));
    const data = path.join(dir, "data");
    const configs = await writeConfigs(dir, data, storage);
    const cli = (...args: string[]) => prosodyctl(["--config", configs[0]!.file, ...args], { cwd: dir });
    const made = await cli("mod_invites", "generate", HOST);
    assert.is(made.code, 0, made.stdout + made.stderr);
    const token = /preauth=([A-Za-z0-9_-]+)/.exec(made.stdout)?.[1];
    assert.ok(token, made.stdout);

    const servers = configs.map((c) => startServer(c.file, dir, c.port));
    try {
      await Promise.all(servers.map((s) => waitForPort(s)));
      // Every server shows the form for the token: each has validated it.
      for (const s of servers) {
        const form = await rawRequest(s.port, `GET /register?t=${token} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
        assert.is(form.status, 200, s.output());
      }
      const posts: Array<Promise<RawResponse>> = [];
      for (let i = 0; i < POSTS_PER_SERVER; i++) {
        for (const [n, s] of servers.entries()) posts.push(post(s.port, { user: `user${n}x${i}`, password: "secret-pass", token }));
      }
      const clis = [cli("mod_invites", "generate", HOST), cli("mod_invites", "generate", HOST)];
      const answers = await Promise.all(posts);
      const cliRuns = await Promise.all(clis);
      for (const r of cliRuns) assert.is(r.code, 0, r.stdout + r.stderr);

      const won = answers.filter((r) => r.status === 200 && r.body.toString().includes("Congratulations"));
      assert.is(won.length, 1, `registrations that succeeded: ${answers.map((r) => r.status).join(",")}`);
      for (const r of answers) {
        if (r === won[0]) continue;
        // Lost races: "already used" (claimed by another), or the token no longer valid at all.
        assert.ok(r.status === 409 || r.status === 303, `status ${r.status}: ${r.body.toString().slice(0, 300)}`);
        assert.not.ok(r.body.toString().includes("Congratulations"));
      }
    } finally {
      for (const s of servers) s.child.kill("SIGTERM");
      await Promise.all(servers.map((s) => s.exited));
    }
    const users = await withStore(storage, data, "accounts", (kv) => kv.users());
    assert.is(users.filter((u) => u !== "").length, 1, `accounts: ${users.join(", ")}`);
    // The CLI's invites, written into the same record meanwhile, are all there; the used one is not.
    const tokens = Object.keys((await withStore(storage, data, "invite_token", (kv) => kv.get(null))) ?? {});
    assert.is(tokens.length, 2, tokens.join(", "));
    assert.not.ok(tokens.includes(token!));
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

for (const storage of ["internal", "sql"] as const) {
  test(`${storage}: one username registered at once on ${SERVERS} servers with different invites: one account, the other invites stay valid`, async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? "/tmp", `prosody-ts-samename-${storage}-`));
    const data = path.join(dir, "data");
    const configs = await writeConfigs(dir, data, storage);
    const cli = (...args: string[]) => prosodyctl(["--config", configs[0]!.file, ...args], { cwd: dir });
    const tokens: string[] = [];
    for (let i = 0; i < SERVERS * 2; i++) {
      const made = await cli("mod_invites", "generate", HOST);
      tokens.push(/preauth=([A-Za-z0-9_-]+)/.exec(made.stdout)![1]!);
    }
    const servers = configs.map((c) => startServer(c.file, dir, c.port));
    let winner = -1;
    try {
      await Promise.all(servers.map((s) => waitForPort(s)));
      const answers = await Promise.all(tokens.map((token, i) => post(servers[i % SERVERS]!.port, { user: "samename", password: `secret-${i}`, token })));
      const won = answers.map((r, i) => [r, i] as const).filter(([r]) => r.body.toString().includes("Congratulations"));
      assert.is(won.length, 1, answers.map((r) => r.status).join(","));
      winner = won[0]![1];
      for (const r of answers) {
        if (r === won[0]![0]) continue;
        assert.is(r.status, 200);
        assert.match(r.body.toString(), "This username is already in use.");
      }
      // The losers' invites were put back: each still registers another name.
      const loser = tokens.find((_, i) => i !== won[0]![1])!;
      const again = await post(servers[0]!.port, { user: "othername", password: "secret-pass", token: loser });
      assert.match(again.body.toString(), "Congratulations");
    } finally {
      for (const s of servers) s.child.kill("SIGTERM");
      await Promise.all(servers.map((s) => s.exited));
    }
    // The account is the winner's: its password, not one written over it by a loser.
    const record = await withStore(storage, data, "accounts", (kv) => kv.get("samename"));
    assert.ok(await verifyScramPassword(record, `secret-${winner}`), "the winner's password");
    const users = await withStore(storage, data, "accounts", (kv) => kv.users());
    assert.equal(users.filter((u) => u !== "").sort(), ["othername", "samename"]);
    fs.rmSync(dir, { recursive: true, force: true });
  });
}

test.run();
