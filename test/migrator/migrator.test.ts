/**
 * prosody-migrator-ts (the built shim, run as a process): Prosody's command line and messages, the
 * internal → SQLite → internal round trip byte for byte, a second run that changes nothing,
 * verification, archive data refused, and one-line errors for what cannot work.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInternalProvider } from "../../src/storage/drivers/internal.js";
import { createSqlProvider, openSqlDatabase } from "../../src/storage/drivers/sql.js";
import type { KeyvalStore } from "../../src/storage/types.js";
import { MIGRATOR, migrator, migratorConfig, seedInternal, treeBytes, treeTimes } from "../helpers/migrator.js";
import { skipIf } from "../helpers/skip.js";

const noStack = (s: string) => assert.not.match(s, /\n\s+at /, "no stack trace");

test("prints Prosody's usage for --help and exits 0", async () => {
  const r = await migrator(["--help"]);
  assert.is(r.code, 0);
  assert.match(r.stdout, /^Usage: \S+ \[OPTIONS\] FROM_STORE TO_STORE\n  --config FILE         Specify config file\n  --keep-going          Keep going in case of errors\n  -v, --verbose         Increase log-level\n\nIf no stores are specified, 'input' and 'output' are used.\n$/);
});

test("a missing or broken config, an unknown store name or option: Prosody's messages, exit 1, no stack trace", async () => {
  const { dir, config } = migratorConfig(`input { type = "internal", path = "$DIR/data" }\n`);
  const missing = await migrator(["--root", "--config", join(dir, "nope.cfg.lua")]);
  assert.is(missing.code, 1);
  assert.is(missing.stdout, `There was an error loading the config file, check that the file exists\nand that the syntax is correct:\n\t${join(dir, "nope.cfg.lua")}: No such file or directory\n`);
  writeFileSync(join(dir, "broken.cfg.lua"), "input {\n");
  const broken = await migrator(["--root", "--config", join(dir, "broken.cfg.lua")]);
  assert.is(broken.code, 1);
  assert.match(broken.stdout, `\t${join(dir, "broken.cfg.lua")}:2: unexpected symbol near <eof>\n`);
  const unknown = await migrator(["--root", "--config", config, "input", "elsewhere"]);
  assert.is(unknown.code, 1);
  assert.match(unknown.stdout, /^Error: Output store 'elsewhere' not found in the config file\.\n\nUsage: /);
  assert.match(unknown.stdout, /The available stores in your migrator config are:\n\n\tinput\n\n$/);
  const count = await migrator(["--root", "--config", config, "input"]);
  assert.match(count.stdout, /^Error: Incorrect number of parameters supplied\.\n/);
  const option = await migrator(["--keepgoing", "--config", config]);
  assert.is(option.code, 1);
  assert.is(option.stdout, "Unknown command-line option: --keepgoing\n");
  const noValue = await migrator(["--config"]);
  assert.is(noValue.stdout, "Expected a value to follow command-line option: --config\n");
  for (const r of [missing, broken, unknown, count, option, noValue]) noStack(r.stdout + r.stderr);
});

test("a bad store type, or an unreachable PostgreSQL: one line on stderr, exit 1", async () => {
  const { config } = migratorConfig(
    `local base = "$DIR"\ninput { type = "internal", path = base .. "/data" }\noutput { type = "sql", driver = "PostgreSQL", host = "127.0.0.1", port = 1, database = "x" }\nbad { type = "files" }\n`,
  );
  const { dir } = { dir: config.slice(0, -"/migrator.cfg.lua".length) };
  mkdirSync(join(dir, "data"));
  const r = await migrator(["--root", "--config", config]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^Migrating\.\.\.\nprosody-migrator: cannot open output store 'output': PostgreSQL 127\.0\.0\.1:1\/x: cannot connect: connect ECONNREFUSED 127\.0\.0\.1:1\n$/);
  const bad = await migrator(["--root", "--config", config, "input", "bad"]);
  assert.is(bad.code, 1);
  assert.is(bad.stderr, `prosody-migrator: ${config}: store 'bad': type must be "internal" or "sql", not "files"\n`);
  noStack(r.stderr + bad.stderr);
});

test("internal → SQLite → internal gives byte-identical files; a second run writes nothing", async () => {
  const { dir, config } = migratorConfig(`
local d = "$DIR"
files { type = "internal", path = d .. "/a" }
db { type = "sql", driver = "SQLite3", database = d .. "/prosody.sqlite" }
back { type = "prosody_files", path = d .. "/b" } -- Prosody's old name for internal
`);
  await seedInternal(join(dir, "a"), 300);
  const there = await migrator(["--root", "--config", config, "files", "db"]);
  assert.is(there.code, 0, there.stderr + there.stdout);
  assert.is(there.stderr, "Migrating...\nDone!\n"); // not a terminal: no progress bar
  assert.match(there.stdout, /general             info\tMigrating host example\.com store invite_token \(keyval\)\n/);
  assert.match(there.stdout, /Verified host example\.com store accounts: 5 record\(s\), sha256 [0-9a-f]{16} in input and output\n/);
  const back = await migrator(["--root", "--config", config, "db", "back"]);
  assert.is(back.code, 0, back.stderr + back.stdout);
  const a = treeBytes(join(dir, "a"));
  const b = treeBytes(join(dir, "b"));
  assert.equal([...b.keys()], [...a.keys()]);
  for (const [file, bytes] of a) assert.ok(bytes.equals(b.get(file)!), `${file} differs`);
  assert.ok(a.size >= 8);

  const dbBytes = readFileSync(join(dir, "prosody.sqlite"));
  const times = treeTimes(join(dir, "b"));
  const again = await migrator(["--root", "--config", config, "files", "db"]);
  assert.is(again.code, 0);
  assert.match(again.stdout, /\t0 record\(s\) written, 9 already up to date\n/);
  const againBack = await migrator(["--root", "--config", config, "db", "back"]);
  assert.match(againBack.stdout, /\t0 record\(s\) written, 9 already up to date\n/);
  assert.ok(readFileSync(join(dir, "prosody.sqlite")).equals(dbBytes), "the SQLite file is unchanged");
  assert.equal(treeTimes(join(dir, "b")), times, "no file was rewritten");
});

test("a sequence (Snikket's bootstrap list) moves as a sequence: one SQL row key \"\" holding the JSON array, the same file back", async () => {
  const { dir, config } = migratorConfig(`
local d = "$DIR"
files { type = "internal", path = d .. "/a" }
db { type = "sql", driver = "SQLite3", database = d .. "/prosody.sqlite" }
back { type = "internal", path = d .. "/b" }
`);
  const list = [
    { index: 1, result: "https://example.com/invite/a/", timestamp: 1700000000 },
    { index: 2, result: "https://example.com/invite/b/", timestamp: 1700000100 },
  ];
  await (createInternalProvider({ dataPath: join(dir, "a"), host: "example.com" }).open("invites_bootstrap", "keyval") as KeyvalStore).set(null, list);
  const there = await migrator(["--root", "--config", config, "files", "db"]);
  assert.is(there.code, 0, there.stderr + there.stdout);
  const db = await openSqlDatabase(join(dir, "prosody.sqlite"));
  try {
    const rows = db.engine.read((v) => v.all(`SELECT "user", "key", "type", "value" FROM "prosody" WHERE "store" = 'invites_bootstrap'`, []));
    assert.equal(rows.map((r) => [r.user, r.key, r.type, JSON.parse(String(r.value))]), [["", "", "json", list]]);
  } finally {
    await db.close({ fold: false });
  }
  const back = await migrator(["--root", "--config", config, "db", "back"]);
  assert.is(back.code, 0, back.stderr + back.stdout);
  const file = "example%2ecom/invites_bootstrap.dat";
  assert.ok(treeBytes(join(dir, "b")).get(file)!.equals(treeBytes(join(dir, "a")).get(file)!), "the same bytes");
});

test("a store named in hosts is the only one moved; a record the output has and the input not fails verification", async () => {
  const { dir, config } = migratorConfig(`
input { type = "internal", path = "$DIR/a", hosts = { ["example.com"] = { "accounts" } } }
output { type = "internal", path = "$DIR/b" }
`);
  await seedInternal(join(dir, "a"), 3);
  const out = createInternalProvider({ dataPath: join(dir, "b"), host: "example.com" }).open("accounts", "keyval") as KeyvalStore;
  await out.set("mallory", { salt: "x" });
  const r = await migrator(["--root", "--config", config]);
  assert.is(r.code, 1);
  assert.match(r.stdout, / error\tVerification failed: host example\.com store accounts: input has 5 record\(s\), output 6; the output has user "mallory", which the input does not have\n/);
  assert.match(r.stderr, /prosody-migrator: verification failed for 1 store\(s\): the output does not hold the same data as the input \(see above\)\n$/);
  assert.not.match(r.stderr, /Done!/);
  assert.equal([...treeBytes(join(dir, "b")).keys()].filter((f) => !f.startsWith("example%2ecom/accounts/")), [], "only accounts moved");
  await out.set("mallory", undefined);
  const ok = await migrator(["--root", "--config", config]);
  assert.is(ok.code, 0, ok.stdout);
});

test("archive data is refused before anything is written (--keep-going moves the rest and still exits 1)", async () => {
  const { dir, config } = migratorConfig(`
input { type = "internal", path = "$DIR/a", hosts = { ["example.com"] = { "accounts", "archive-archive", "offline-archive", "pubsub_nodes-pubsub" } } }
output { type = "sql", database = "$DIR/out.sqlite" }
`);
  await seedInternal(join(dir, "a"), 1);
  mkdirSync(join(dir, "a/example%2ecom/archive"));
  writeFileSync(join(dir, "a/example%2ecom/archive/alice.list"), "item({});\n");
  // pubsub: the node list is a keyval record (moved), each node's items an archive store (not).
  writeFileSync(join(dir, "a/example%2ecom/pubsub_nodes.dat"), 'return {\n\t["news"] = {\n\t\t["config"] = {};\n\t};\n};\n');
  writeFileSync(join(dir, "a/example%2ecom/pubsub_news.list"), "item({});\n");
  const r = await migrator(["--root", "--config", config]);
  assert.is(r.code, 1);
  assert.match(r.stdout, / error\thost example\.com store archive-archive: 1 archive file \(\.list\) not migrated \(archive stores are not supported by this migrator\)\n/);
  assert.match(r.stdout, / info\tHost example\.com store offline-archive: no archive data to migrate\n/);
  assert.match(r.stderr, /nothing was migrated \(--keep-going migrates the rest\)\n$/);
  assert.not.ok(existsSync(join(dir, "out.sqlite")), "no output made");
  // Without a hosts list, archive data found in the input is reported the same way.
  const { config: found } = migratorConfig(`input { type = "internal", path = "${dir}/a" }\noutput { type = "sql", database = "${dir}/out.sqlite" }\n`);
  const discovered = await migrator(["--root", "--config", found]);
  assert.is(discovered.code, 1);
  assert.match(discovered.stdout, / error\thost example\.com store archive-archive: 1 archive file \(\.list\) not migrated/);
  assert.not.ok(existsSync(join(dir, "out.sqlite")), "no output made");
  const going = await migrator(["--root", "--keep-going", "--config", config]);
  assert.is(going.code, 1);
  assert.match(going.stdout, /Verified host example\.com store accounts: 5 record\(s\)/);
  assert.match(r.stdout, / error\thost example\.com store pubsub_nodes-pubsub: 1 archive file \(\.list\) not migrated/);
  assert.match(going.stdout, /Verified host example\.com store pubsub_nodes: 1 record\(s\)/);
  assert.match(going.stderr, /2 store\(s\) with archive data were not migrated \(see above\)\n$/);
});

test("every record is written with its top-level keys sorted: the same file whichever way it went", async () => {
  const { dir, config } = migratorConfig(`
local d = "$DIR"
input { type = "internal", path = d .. "/a" }
direct { type = "internal", path = d .. "/direct" }
lite { type = "sql", database = d .. "/prosody.sqlite" }
back { type = "internal", path = d .. "/back" }
`);
  const kv = createInternalProvider({ dataPath: join(dir, "a"), host: "example.com" }).open("accounts", "keyval") as KeyvalStore;
  await kv.set("alice", { zeta: 1, alpha: { z: 1, a: 2 }, mid: "m" }); // keys not in order; nested order is kept
  for (const [from, to] of [["input", "direct"], ["input", "lite"], ["lite", "back"]]) {
    const r = await migrator(["--root", "--config", config, from!, to!]);
    assert.is(r.code, 0, r.stdout + r.stderr);
  }
  const file = "example%2ecom/accounts/alice.dat";
  const direct = readFileSync(join(dir, "direct", file), "utf8");
  assert.is(direct, 'return {\n\t["alpha"] = {\n\t\t["z"] = 1;\n\t\t["a"] = 2;\n\t};\n\t["mid"] = "m";\n\t["zeta"] = 1;\n};\n');
  assert.is(readFileSync(join(dir, "back", file), "utf8"), direct);
});

test("a record the output cannot hold stops the run (exit 1); --keep-going writes the rest, logs it, and still exits 1", async () => {
  const { dir, config } = migratorConfig(`input { type = "sql", database = "$DIR/in.sqlite" }\noutput { type = "internal", path = "$DIR/b" }\n`);
  const db = await openSqlDatabase(join(dir, "in.sqlite"));
  const accounts = createSqlProvider({ host: "example.com", db }).open("accounts", "keyval") as KeyvalStore;
  const long = "x".repeat(300); // a file name Prosody could not write: the internal driver refuses it
  await accounts.set("alice", { salt: "a" });
  await accounts.set(long, { salt: "l" });
  await accounts.set("zoe", { salt: "z" });
  await db.close({ fold: true });
  const stop = await migrator(["--root", "--config", config]);
  assert.is(stop.code, 1);
  assert.match(stop.stderr, /^Migrating\.\.\.\nprosody-migrator: host example\.com store accounts: .*too long.*\n$/);
  noStack(stop.stderr + stop.stdout);
  const going = await migrator(["--root", "--keep-going", "-v", "--config", config]);
  assert.is(going.code, 1);
  assert.match(going.stdout, / error\tError migrating data for user "x{300}": .*too long/);
  assert.match(going.stdout, / debug\t(Migrated|Unchanged): user zoe@example\.com store accounts \(keyval\)\n/);
  assert.match(going.stdout, /Verification failed: host example\.com store accounts: input has 3 record\(s\), output 2; user "x{300}" is missing from the output/);
  assert.match(going.stderr, /verification failed for 1 store\(s\)/);
  assert.ok(existsSync(join(dir, "b/example%2ecom/accounts/zoe.dat")));
});

test("an input with no data: a warning, nothing written, exit 0", async () => {
  const { dir, config } = migratorConfig(`input { type = "internal", path = "$DIR/a" }\noutput { type = "internal", path = "$DIR/b" }\n`);
  mkdirSync(join(dir, "a"));
  const r = await migrator(["--root", "--config", config]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, / warn\tNothing to migrate: no data found in \S+\/a\n/);
  assert.is(existsSync(join(dir, "b")), false);
});

const hasScript = spawnSync("script", ["--version"], { stdio: "ignore" }).status === 0;
skipIf(test, !hasScript && "script(1) from util-linux is needed for a terminal")("draws a progress bar when stderr is a terminal", async () => {
  const { dir, config } = migratorConfig(`input { type = "internal", path = "$DIR/a" }\noutput { type = "sql", database = "$DIR/p.sqlite" }\n`);
  await seedInternal(join(dir, "a"), 20);
  // script(1) runs the migrator on a pseudo-terminal and copies what it draws.
  const r = spawnSync("script", ["-qfec", `${process.execPath} ${MIGRATOR} --root --config ${config}`, "/dev/null"], { encoding: "utf8", timeout: 60_000 });
  assert.is(r.status, 0, r.stdout);
  assert.match(r.stdout, /Migrating \[\u2588+\] 100% \| 11\/11 records \| example\.com invite_token/);
  assert.match(r.stdout, /Done!/);
});

const asRoot = skipIf(test, process.getuid?.() !== 0 ? "needs root" : spawnSync("id", ["-u", "prosody"]).status !== 0 ? "no prosody user" : undefined);
asRoot("started as root, it works as the prosody user: the files it makes are prosody's", async () => {
  const { dir, config } = migratorConfig(
    `input { type = "internal", path = "$DIR/a" }\noutput { type = "internal", path = "$DIR/b" }\nlite { type = "sql", database = "$DIR/b/prosody.sqlite" }\n`,
  );
  await seedInternal(join(dir, "a"), 2);
  const uid = Number(spawnSync("id", ["-u", "prosody"], { encoding: "utf8" }).stdout);
  const gid = Number(spawnSync("id", ["-g", "prosody"], { encoding: "utf8" }).stdout);
  mkdirSync(join(dir, "b"));
  spawnSync("chown", ["-R", `${uid}:${gid}`, join(dir, "a"), join(dir, "b")]); // Prosody's data is prosody's
  chmodSync(dir, 0o755); // the config is read as prosody, as by Prosody's migrator
  const r = await migrator(["--config", config]);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const f = statSync(join(dir, "b/example%2ecom/accounts/alice.dat"));
  assert.is(f.uid, uid);
  assert.is(f.mode & 0o777, 0o640);
  // A new SQLite file belongs to whoever creates it: Prosody could not write one left to root.
  const lite = await migrator(["--config", config, "input", "lite"]);
  assert.is(lite.code, 0, lite.stdout + lite.stderr);
  assert.is(statSync(join(dir, "b/prosody.sqlite")).uid, uid);
});

test.run();
