/**
 * Replays every prosodyctl run in golden/10-cli-{internal,sql}.txt (captured from Prosody 0.12.3)
 * against our prosodyctl and compares stdout, stderr and exit code: once in-process, once through a
 * running server's admin socket (src/cli/admin-socket.ts). Random ids and tokens are
 * matched by shape; ids from earlier output are mapped into later arguments.
 * Documented deviations (README "Differences from Prosody"): where Prosody prints a Lua traceback
 * we print one line with the same exit code; `--reset … --group …` creates nothing and exits 2.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl, tempConfig } from "../helpers/cli.js";
import { goldenFile, parseCliTranscript, type CliRun } from "../helpers/golden.js";
import { openSqlDatabase } from "../../src/storage/drivers/sql.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startServerProcess } from "../helpers/server-process.js";
import { skip } from "../helpers/skip.js";

const CONFIG = `
data_path = "$DIR/data"
storage = "sql"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
modules_enabled = { "invites", "invites_api", "invites_page", "invites_register", "invites_register_web", "register_apps", "register", "http" }
VirtualHost "example.org"
modules_enabled = { "http" }
`;

const KEY = /^([A-Za-z0-9_-]{12})\/([A-Za-z0-9_-]{36})\n$/;
const URI = /^xmpp:(?:([a-z]+)@)?([a-z.]+)\?register;preauth=[A-Za-z0-9_-]{24}\n$/;

/** Our intended, documented answers where Prosody crashes or misbehaves. */
function deviation(run: CliRun): { stdout: RegExp; exit: number } | undefined {
  const a = run.argv.slice(3).join(" ");
  if (a === "mod_invites generate example.com --reset") return { stdout: /^Error: --reset needs a USERNAME\n$/, exit: 1 };
  if (a === "mod_invites generate nosuch.host") return { stdout: /^Error: Host nosuch\.host does not exist\n$/, exit: 1 };
  if (a === "mod_invites generate example.com --reset alice --group g1")
    return { stdout: /^--group and --reset are mutually exclusive\n$/, exit: 2 };
  return undefined;
}

test("Prosody printed the same for internal and sql storage (so one replay covers both)", (ctx) => {
  const a = goldenFile("10-cli-internal.txt");
  const b = goldenFile("10-cli-sql.txt");
  if (!a || !b) return skip(ctx, "shared/spec/golden not found");
  const shape = (runs: CliRun[]) =>
    runs.map((r) => [r.argv.slice(3).join(" ").replace(/[A-Za-z0-9_-]{12}$/, "<id>"), r.stdout.replace(/[A-Za-z0-9_-]{12}(?=[\t/])/g, "<id>").replace(/[A-Za-z0-9_-]{24,36}/g, "<x>").split("\n").sort().join("\n"), r.exit]);
  assert.equal(shape(parseCliTranscript(a)), shape(parseCliTranscript(b)));
});

for (const variant of ["internal"]) {
  const buf = goldenFile(`10-cli-${variant}.txt`);
  if (!buf) {
    test(`golden CLI (${variant})`, (ctx) => skip(ctx, "shared/spec/golden not found"));
    continue;
  }
  const runs = parseCliTranscript(buf);

  test(`every prosodyctl run of 10-cli-${variant}.txt matches Prosody's output, in-process (${runs.length} runs)`, async () => {
    assert.ok(runs.length >= 39, "transcript parsed");
    const { dir, config } = tempConfig(CONFIG);
    await replay(runs, dir, config);
    assert.not.ok(existsSync(join(dir, "data", "prosody-ts.sock")), "no server, no admin socket");
  });

  test(`the same runs through a running server's admin socket match too (${runs.length} runs)`, async () => {
    const server = await startServerProcess(CONFIG);
    try {
      // HTTP answers a moment before the admin socket is there.
      for (let i = 0; i < 100 && !existsSync(join(server.dir, "data", "prosody-ts.sock")); i++) await new Promise((r) => setTimeout(r, 50));
      await replay(runs, server.dir, server.config);
      // Every module command went through the server (it logs each one), none ran in-process.
      const inServer = server.output().match(/Running for prosodyctl: mod_\S+/g) ?? [];
      const moduleRuns = runs.filter((r) => r.argv.slice(3).find((a, i, all) => !a.startsWith("-") && all[i - 1] !== "--config")?.startsWith("mod_"));
      assert.ok(moduleRuns.length >= 39, "transcript parsed");
      assert.is(inServer.length, moduleRuns.length, "each module command ran in the server");
    } finally {
      await server.stop();
    }
  });
}

async function replay(runs: CliRun[], dir: string, config: string): Promise<void> {
  const idMap = new Map<string, string>(); // golden key id → our key id
  for (const run of runs) {
    const args = run.argv.slice(3).map((a) => idMap.get(a) ?? a);
    const ours = await prosodyctl(["--config", config, ...args], { cwd: dir });
    const label = `$ ${run.command}\n--- ours:\n${ours.stdout}${ours.stderr}`;
    assert.is(ours.stderr, run.stderr, label);
    const dev = deviation(run);
    if (dev) {
      assert.match(ours.stdout, dev.stdout, label);
      assert.is(ours.code, dev.exit, label);
      assert.is(ours.code, run.exit === 0 ? 2 : run.exit, "same exit code as Prosody (or 2 where it wrongly succeeds)");
      continue;
    }
    assert.is(ours.code, run.exit, label);
    const gk = KEY.exec(run.stdout);
    if (gk) {
      const ok = KEY.exec(ours.stdout);
      assert.ok(ok, label);
      idMap.set(gk[1]!, ok![1]!);
      continue;
    }
    const gu = URI.exec(run.stdout.split("\n").at(-2) + "\n");
    if (gu) {
      const lines = ours.stdout.split("\n");
      const last = lines.at(-2) + "\n";
      const ou = URI.exec(last);
      assert.ok(ou, label);
      assert.equal([ou![1], ou![2]], [gu[1], gu[2]], label);
      assert.is(lines.slice(0, -2).join("\n"), run.stdout.split("\n").slice(0, -2).join("\n"), label);
      continue;
    }
    if (run.argv[4] === "list" && run.exit === 0) {
      const reverse = new Map([...idMap].map(([g, o]) => [o, g]));
      const mapped = ours.stdout.split("\n").map((l) => l.replace(/^[^\t]+/, (id) => reverse.get(id) ?? id));
      assert.equal(mapped.sort(), run.stdout.split("\n").sort(), label);
      continue;
    }
    assert.is(ours.stdout, run.stdout, label);
  }
}

test("stored records after the replay: Prosody's fields, secrets hashed by default, plaintext on request", async () => {
  for (const plaintext of [false, true]) {
    const { dir, config } = tempConfig(CONFIG + (plaintext ? "" : ""));
    if (plaintext) {
      const { writeFileSync, readFileSync } = await import("node:fs");
      writeFileSync(config, "invites_api_plaintext_keys = true\n" + readFileSync(config, "utf8"));
    }
    const named = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com", "My key"], { cwd: dir });
    const unnamed = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
    const admin = await prosodyctl(["--config", config, "mod_invites", "generate", "example.com", "--admin", "-g", "g1"], { cwd: dir });
    const reset = await prosodyctl(["--config", config, "mod_invites", "generate", "example.com", "--reset", "Alice"], { cwd: dir });
    assert.is(named.code, 0);
    const [id, secret] = named.stdout.trim().split("/");
    const db = await openSqlDatabase(join(dir, "data", "prosody.sqlite"));
    const rows = db.engine.sqlite.all(`SELECT host, user, store, key, type, value FROM prosody ORDER BY store, key`, []) as any[];
    const key = rows.find((r) => r.key === id)!;
    assert.is(key.host, "example.com");
    assert.is(key.user, "");
    assert.is(key.type, "json");
    const rec = JSON.parse(key.value);
    assert.equal(rec.allowed_methods, { GET: true, POST: true });
    assert.is(rec.name, "My key");
    assert.is(rec.id, id);
    assert.type(rec.created_at, "number");
    if (plaintext) {
      assert.equal(Object.keys(rec).sort(), ["allowed_methods", "created_at", "id", "name", "token"]);
      assert.is(rec.token, secret);
    } else {
      assert.equal(Object.keys(rec).sort(), ["allowed_methods", "created_at", "id", "name", "secret_hash"]);
      assert.not.ok(key.value.includes(secret), "the secret is not stored");
    }
    const unnamedRec = JSON.parse(rows.find((r) => r.key === unnamed.stdout.trim().split("/")[0])!.value);
    assert.not.ok("name" in unnamedRec);
    const tok = (out: string) => out.trim().split("preauth=")[1]!;
    const adminRec = JSON.parse(rows.find((r) => r.key === tok(admin.stdout))!.value);
    assert.equal(adminRec.additional_data, { groups: ["g1"], roles: { "prosody:admin": true } });
    assert.equal(Object.keys(adminRec).sort(), ["additional_data", "allow_registration", "created_at", "expires", "jid", "token", "type", "uri"]);
    assert.is(adminRec.expires - adminRec.created_at, 604800);
    const resetRec = JSON.parse(rows.find((r) => r.key === tok(reset.stdout))!.value);
    assert.equal(resetRec.additional_data, { allow_reset: "alice" });
    assert.is(resetRec.jid, "alice@example.com");
    assert.is(resetRec.expires - resetRec.created_at, 86400);
    await db.close();
  }
});

test("an empty groups list is stored as {} like Prosody (golden 11-cli-sql-storage-after)", async () => {
  const { dir, config } = tempConfig(CONFIG);
  const r = await prosodyctl(["--config", config, "mod_invites", "generate", "example.com"], { cwd: dir });
  const token = r.stdout.trim().split("preauth=")[1]!;
  const db = await openSqlDatabase(join(dir, "data", "prosody.sqlite"));
  const row = db.engine.sqlite.get(`SELECT value FROM prosody WHERE key = ?`, [token]) as any;
  assert.match(row.value, /"additional_data":\{"groups":\{\}\}/);
  await db.close();
});

test.run();
