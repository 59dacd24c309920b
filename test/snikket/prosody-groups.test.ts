/**
 * What our Snikket modules write, read back by the real Prosody 0.12 on the same data (internal
 * and SQLite storage): the group membership (mod_invites_groups) through the very store calls
 * mod_groups_internal makes (keyval `groups`:get(group), map `groups`:get(group, user), and on SQL
 * map get_all(user)), the group's `group_info`, and the mod_invites_tracking records.
 *
 * prosody-modules from apt has no mod_groups_internal, so real Prosody loads a probe of our own
 * (below) that answers those reads as JSON over HTTP.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { KeyvalStore } from "../../src/storage/types.js";
import { freePort, rawRequest, waitForHttp } from "../helpers/http.js";
import { prosodyMissing } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";
import { startTestServer } from "./_helpers.js";

const HOST = "example.com";

/** Our own probe module for real Prosody: GET /probe?type=kv|map|all&store=S&user=U&key=K → JSON. */
const PROBE = `
local json = require "util.json";
local formdecode = require "net.http".formdecode;
module:depends("http");
module:provides("http", {
  default_path = "probe";
  route = {
    GET = function(event)
      local q = formdecode(event.request.url.query or "") or {};
      local result;
      if q.type == "kv" then
        result = module:open_store(q.store):get(q.user);
      elseif q.type == "map" then
        result = module:open_store(q.store, "map"):get(q.user, q.key);
      elseif q.type == "all" then
        local store = module:open_store(q.store, "map");
        if not store.get_all then return 501; end
        result = store:get_all(q.key);
      end
      event.response.headers.content_type = "application/json";
      return json.encode({ value = result, type = type(result) });
    end;
  };
});
`;

const missing = prosodyMissing();

for (const storage of ["internal", "sql"] as const) {
  test(`${storage}: real Prosody reads the membership, group info and tracking records we wrote`, async (ctx) => {
    if (missing) return skip(ctx, missing);
    const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
    const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
    const dir = mkdtempSync(join(tmpdir(), `snikket-groups-${storage}-`));
    chmodSync(dir, 0o755);
    for (const sub of ["data", "certs", "plugins/mod_test_probe"]) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, "plugins/mod_test_probe/mod_test_probe.lua"), PROBE);
    const storageConfig = `storage = "${storage}"\nsql = { driver = "SQLite3", database = "prosody.sqlite" }\n`;

    // 1. Our server writes: group info, a registration with a group invite (membership + tracking).
    const ours = await startTestServer(`
data_path = ${JSON.stringify(join(dir, "data"))}
${storageConfig}
VirtualHost "${HOST}"
modules_enabled = { "http", "invites", "invites_register", "invites_register_api", "invites_groups", "invites_tracking", "test_recorder" }
`);
    let token: string;
    try {
      const info = (await ours.rt.storage.open(HOST, "group_info", "keyval")) as KeyvalStore;
      await info.set("default", { name: "Everyone" });
      await info.set("team", { name: "Team" });
      const [invite] = await ours.invites().createAccount(undefined, { groups: ["default", "team", "ghost"], source: "api/token/k9" });
      token = invite!.token;
      for (const [username, t] of [["uma", token], ["victor", (await ours.invites().createGroup(["team"], undefined, 600))[0]!.token]]) {
        const r = await ours.request("POST", "/register_api/register", { body: JSON.stringify({ username, password: "pw", token: t }) });
        assert.is(r.status, 200, r.body.toString());
      }
    } finally {
      await ours.stop();
    }
    execFileSync("chown", ["-R", `${uid}:${gid}`, dir]);

    // 2. Real Prosody reads it.
    const port = await freePort();
    const config = join(dir, "prosody.cfg.lua");
    writeFileSync(
      config,
      `pidfile = "${dir}/prosody.pid"
data_path = "${dir}/data"
certificates = "${dir}/certs"
plugin_paths = { "${dir}/plugins" }
log = { warn = "${dir}/prosody.log" }
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
https_ports = {}
c2s_ports = {}
s2s_ports = {}
${storageConfig}
modules_enabled = { "http", "test_probe" }
VirtualHost "${HOST}"
`,
    );
    execFileSync("chown", [`${uid}:${gid}`, config]);
    let prosody: ChildProcess | undefined;
    try {
      prosody = spawn("runuser", ["-u", "prosody", "--", "prosody", "--config", config, "-F"], { cwd: dir, stdio: "ignore" });
      const log = join(dir, "prosody.log");
      await waitForHttp(port, "Prosody", () => (existsSync(log) ? readFileSync(log, "utf8").slice(-2000) : ""));
      const read = async (query: Record<string, string>) => {
        const r = await rawRequest(port, `GET /probe?${new URLSearchParams(query)} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
        assert.is(r.status, 200, `${JSON.stringify(query)}: ${r.status} ${r.body}`);
        return JSON.parse(r.body.toString("utf8")) as { value?: unknown; type: string };
      };
      // mod_groups_internal's get_members(group): the keyval record of the group id.
      assert.equal(await read({ type: "kv", store: "groups", user: "default" }), { value: { uma: {} }, type: "table" });
      assert.equal(await read({ type: "kv", store: "groups", user: "team" }), { value: { uma: {}, victor: {} }, type: "table" });
      assert.equal(await read({ type: "kv", store: "groups", user: "ghost" }), { type: "nil" });
      // add_member's write, read back as it wrote it.
      assert.equal(await read({ type: "map", store: "groups", user: "team", key: "victor" }), { value: {}, type: "table" });
      assert.equal(await read({ type: "kv", store: "group_info", user: "default" }), { value: { name: "Everyone" }, type: "table" });
      if (storage === "sql") {
        // get_user_groups(username): map get_all (SQL only in Prosody 0.12).
        assert.equal(await read({ type: "all", store: "groups", key: "uma" }), { value: { default: {}, team: {} }, type: "table" });
      }
      assert.equal(await read({ type: "kv", store: "invites_tracking", user: "uma" }), { value: { invite_id: token, invite_source: "api/token/k9" }, type: "table" });
      assert.equal(await read({ type: "kv", store: "invites_tracking", user: " " }), { value: { version: "1" }, type: "table" });
    } finally {
      if (prosody && prosody.exitCode === null) {
        const done = new Promise((r) => prosody!.on("exit", r));
        prosody.kill("SIGTERM");
        const t = setTimeout(() => prosody!.kill("SIGKILL"), 10_000);
        await done;
        clearTimeout(t);
      }
    }
  });
}

test.run();
