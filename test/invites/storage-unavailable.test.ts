/**
 * Issue #11 items 1 and 4 on a running server, with another process holding the storage lock past
 * `storage_lock_timeout`:
 * - a write that cannot take the lock is a 503 with Retry-After, and the next request after the
 *   lock is free succeeds (before: 500, then 500 for every invite until restart);
 * - a registration whose invite cannot be claimed creates no account and shows an error page; the
 *   invite stays valid and works once the lock is free (before: "Congratulations", an account, and
 *   the invite left valid for more accounts);
 * - a store whose first open fails (the SQL database locked) is a 503 for that request and is
 *   opened by the next one (before: an empty fallback store: a valid API key got 403 until restart).
 */
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AuthProvider } from "../../plugins/mod_auth_internal_hashed/mod_auth_internal_hashed.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import { startServer } from "../../src/server.js";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";
import { holdLockInAnotherProcess } from "../helpers/lock-holder-client.js";
import { captureLogs } from "../helpers/logs.js";

const HOST = "example.com";

async function server(storage: "internal" | "sql") {
  setLogLevel("error");
  const port = await freePort();
  const { dir, config } = tempConfig(`
data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
storage = "${storage}"
storage_lock_timeout = 0.5
VirtualHost "${HOST}"
modules_enabled = { "invites", "invites_api", "invites_page", "invites_register", "invites_register_web", "http" }
password_policy = { length = 4 }
`);
  const ctl = (...args: string[]) => prosodyctl(["--config", config, ...args], { cwd: dir });
  return { port, dir, config, ctl, data: path.join(dir, "data") };
}

const get = (port: number, target: string, headers = "") =>
  rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: ${HOST}\r\n${headers}Connection: close\r\n\r\n`, { timeoutMs: 20_000 });

function post(port: number, fields: Record<string, string>): Promise<RawResponse> {
  const body = new URLSearchParams(fields).toString();
  return rawRequest(
    port,
    `POST /register HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    { timeoutMs: 20_000 },
  );
}

function assertUnavailable(r: RawResponse, what: string) {
  assert.is(r.status, 503, `${what}: ${r.statusLine}`);
  assert.ok(Number(r.header("retry-after")) > 0, `${what}: Retry-After`);
}

test("internal: API and registration while the invite store's lock is held elsewhere: 503, nothing created; all works once it is free", async () => {
  const s = await server("internal");
  const key = (await s.ctl("mod_invites_api", "create", HOST)).stdout.trim();
  const rt = await startServer(await loadConfigFile(s.config), { cwd: s.dir });
  try {
    const invites = rt.modules.get(HOST, "invites")!.exports as InvitesApi;
    const auth = rt.modules.get(HOST, "auth_internal_hashed")!.exports as AuthProvider;
    const api = () => get(s.port, "/invites_api", `Authorization: Bearer ${key}\r\n`);
    assert.is((await api()).status, 201);
    const [invite] = await invites.createAccount();
    const token = invite!.token;

    const tokens = createInternalProvider({ dataPath: s.data, host: HOST }).pathOf("invite_token", null);
    const held = await holdLockInAnotherProcess("internal", tokens, s.data);
    try {
      assertUnavailable(await api(), "API while locked");
      assertUnavailable(await api(), "API while locked, again");
    } finally {
      await held.release();
    }
    assert.is((await api()).status, 201, "the API works again once the lock is free");

    const held2 = await holdLockInAnotherProcess("internal", tokens, s.data);
    const logs = captureLogs();
    try {
      const r = await post(s.port, { user: "first", password: "secret-pass", token });
      // The failed claim is logged naming the invite by a hint, never by its (usable) token.
      const claimLine = logs.messages("error").find((m) => m.startsWith("Could not claim invite"));
      assert.ok(claimLine, logs.messages().join("\n"));
      assert.match(claimLine!, `Could not claim invite ${token.slice(0, 6)}… for first@${HOST}`);
      assert.not.ok(logs.messages().some((m) => m.includes(token)), "the token is in no log line");
      assertUnavailable(r, "registration while locked");
      assert.not.ok(r.body.toString().includes("Congratulations"));
      assert.match(r.body.toString(), "has not been used");
      assert.is(await auth.userExists("first"), false);
    } finally {
      logs.restore();
      setLogLevel("error");
      await held2.release();
    }
    const ok = await post(s.port, { user: "second", password: "secret-pass", token });
    assert.is(ok.status, 200);
    assert.match(ok.body.toString(), "Congratulations");
    assert.is(await auth.userExists("second"), true);
    const again = await post(s.port, { user: "third", password: "secret-pass", token });
    assert.not.ok(again.body.toString().includes("Congratulations"), "the invite was single-use");
    assert.is(await auth.userExists("third"), false);
  } finally {
    await rt.stop();
  }
});

test("sql: a store whose first open fails (database locked) is a 503, and the next request opens it", async () => {
  const s = await server("sql");
  const key = (await s.ctl("mod_invites_api", "create", HOST)).stdout.trim();
  const made = (await s.ctl("mod_invites", "generate", HOST)).stdout.trim();
  const token = /(?:preauth=|\?)([A-Za-z0-9_-]{20,})$/.exec(made)?.[1];
  assert.ok(token);
  // Held before the server starts: its early open at start gives up after storage_lock_timeout
  // (a warning, not a failed start), so the stores are first opened by requests.
  const held = await holdLockInAnotherProcess("sql", path.join(s.data, "prosody.sqlite"));
  let rt: Awaited<ReturnType<typeof startServer>> | undefined;
  const api = () => get(s.port, "/invites_api", `Authorization: Bearer ${key}\r\n`);
  try {
    try {
      rt = await startServer(await loadConfigFile(s.config), { cwd: s.dir });
      assertUnavailable(await api(), "a valid key while the database cannot be opened");
      assertUnavailable(await get(s.port, `/register?t=${token}`), "the form of a valid invite while the database cannot be opened");
      assertUnavailable(await get(s.port, `/invites_page?${token}`), "the landing page of a valid invite while the database cannot be opened");
      const r = await post(s.port, { user: "early", password: "secret-pass", token });
      assertUnavailable(r, "registration while the database cannot be opened");
      assert.not.ok(r.body.toString().includes("Congratulations"));
    } finally {
      await held.release();
    }
    assert.is((await api()).status, 201, "the next request opens the store");
    assert.is((await get(s.port, `/register?t=${token}`)).status, 200);
    assert.is((await get(s.port, `/invites_page?${token}`)).status, 200);
    const ok = await post(s.port, { user: "later", password: "secret-pass", token });
    assert.match(ok.body.toString(), "Congratulations");
  } finally {
    await rt?.stop();
  }
});

test.run();
