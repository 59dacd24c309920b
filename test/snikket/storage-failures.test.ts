/**
 * Storage failing under mod_invites_register_api and mod_invites_bootstrap (internal storage,
 * another process holding a store's lock past `storage_lock_timeout`): 503 with Retry-After
 * (upstream: 500), nothing half-done, and everything works once the lock is free.
 */
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { AuthProvider } from "../../plugins/mod_auth_internal_hashed/mod_auth_internal_hashed.js";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import type { RawResponse } from "../helpers/http.js";
import { holdLockInAnotherProcess } from "../helpers/lock-holder-client.js";
import { startTestServer, type TestServer } from "./_helpers.js";

const HOST = "example.com";
const SECRET = "s3cret";
let srv: TestServer;

const data = () => path.join(srv.dir, "data");
const fileOf = (store: string) => createInternalProvider({ dataPath: data(), host: HOST }).pathOf(store, null);
const register = (username: string, token: string) =>
  srv.request("POST", "/register_api/register", { body: JSON.stringify({ username, password: "pw", token }) });

function assertUnavailable(r: RawResponse, what: string) {
  assert.is(r.status, 503, `${what}: ${r.statusLine}`);
  assert.ok(Number(r.header("retry-after")) > 0, `${what}: Retry-After`);
}

test.before(async () => {
  srv = await startTestServer(`
storage = "internal"
storage_lock_timeout = 0.5
VirtualHost "${HOST}"
modules_enabled = { "http", "invites", "invites_register", "invites_register_api", "invites_bootstrap", "test_recorder" }
invites_bootstrap_secret = "${SECRET}"
invites_bootstrap_index = 4
`);
});

test.after(async () => {
  await srv?.stop();
});

test("register_api: the invite cannot be claimed: 503, no account, and the invite works afterwards", async () => {
  const auth = srv.exports<AuthProvider>(HOST, "auth_internal_hashed");
  const [invite] = await srv.invites().createAccount();
  const held = await holdLockInAnotherProcess("internal", fileOf("invite_token"), data());
  try {
    assertUnavailable(await register("wendy", invite!.token), "registration while the invite store is locked");
  } finally {
    await held.release();
  }
  assert.not.ok(await auth.userExists("wendy"));
  assert.is((await register("wendy", invite!.token)).status, 200, "the invite was not spent");
  assert.is((await register("xavier", invite!.token)).status, 404, "and it is single-use");
});

test("register_api: the account cannot be written: 503, and the claimed invite is put back", async () => {
  const auth = srv.exports<AuthProvider>(HOST, "auth_internal_hashed");
  const [invite] = await srv.invites().createAccount();
  assert.equal(await auth.createUser("someone", "pw"), [true, undefined]); // the accounts store exists
  const held = await holdLockInAnotherProcess("internal", createInternalProvider({ dataPath: data(), host: HOST }).pathOf("accounts", "yara"), data());
  try {
    assertUnavailable(await register("yara", invite!.token), "registration while the account file is locked");
  } finally {
    await held.release();
  }
  assert.not.ok(await auth.userExists("yara"));
  assert.is((await srv.request("GET", `/register_api/invite/${invite!.token}`)).status, 200, "the invite is back");
  assert.is((await register("yara", invite!.token)).status, 200);
});

test("bootstrap: the record cannot be stored: 503, the invite made for it deleted; the next request makes the one invite", async () => {
  const bootstrap = () => srv.request("GET", `/invites_bootstrap?token=${SECRET}`);
  const fromBootstrap = async () => (await srv.invites().pendingAccountInvites()).filter(([, r]) => r.additional_data?.source === "api/token/bootstrap-4");
  const held = await holdLockInAnotherProcess("internal", fileOf("invites_bootstrap"), data());
  try {
    assertUnavailable(await bootstrap(), "bootstrap while its store is locked");
  } finally {
    await held.release();
  }
  assert.is((await fromBootstrap()).length, 0, "no admin invite left without its record");
  const ok = await bootstrap();
  assert.is(ok.status, 303);
  const again = await bootstrap();
  assert.is(again.header("location"), ok.header("location"));
  assert.is((await fromBootstrap()).length, 1);
});

test.run();
