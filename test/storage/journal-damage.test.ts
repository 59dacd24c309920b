/**
 * A damaged SQLite change journal, a database file changed by another program, a missing database
 * file: every process refuses with one clear message and changes no file; `prosodyctl storage
 * recover-journal` salvages every intact record. A torn tail (the last, partially written record)
 * is still ignored and cut. All with real processes (test/fixtures/storage/writer.ts, prosodyctl).
 */
import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DurableSqlite } from "../../src/storage/sqlite/durable-db.js";
import { loadSqlJs } from "../../src/storage/sqlite/sqljs.js";
import { PROSODYCTL, tempConfig, type Ran } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { skip } from "../helpers/skip.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WRITER = path.join(ROOT, "test/fixtures/storage/writer.ts");
const HAVE_SQLITE3 = spawnSync("sh", ["-c", "command -v sqlite3"], { stdio: "ignore" }).status === 0;

function run(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

const writer = (mode: string, db: string, ...args: string[]) => run(process.execPath, ["--import", "tsx", WRITER, mode, db, ...args]);
const ctl = (config: string, ...args: string[]) => run(process.execPath, [PROSODYCTL, "--config", config, ...args], { cwd: path.dirname(config) });

/** A config with SQL storage for example.com; its database file. */
function setup(port = 1): { dir: string; config: string; db: string; journal: string } {
  const { dir, config } = tempConfig(
    `data_path = "$DIR/data"\nstorage = "sql"\nhttp_ports = { ${port} }\nhttp_interfaces = { "127.0.0.1" }\nVirtualHost "example.com"\nmodules_enabled = { "http", "invites", "invites_api" }\n`,
  );
  const db = path.join(dir, "data", "prosody.sqlite");
  return { dir, config, db, journal: `${db}.sqljs-journal` };
}

/** Writers in separate processes, none folding the journal (they close without compacting). */
async function writeInProcesses(db: string, prefixes: string[], each: number): Promise<void> {
  for (const p of prefixes) {
    const r = await writer("write", db, p, String(each));
    assert.is(r.code, 0, `writer ${p}: ${r.stderr}`);
  }
}

/**
 * name → sha256 of every file in the directory (not our lock directory nor a running server's
 * admin socket: live sockets, no data).
 */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    if (name === ".prosody-ts-locks" || fs.statSync(path.join(dir, name)).isSocket()) continue;
    out[name] = crypto.createHash("sha256").update(fs.readFileSync(path.join(dir, name))).digest("hex");
  }
  return out;
}

async function keysIn(db: string): Promise<string[]> {
  const { SQL } = await loadSqlJs(); // one sql.js instance per process (DurableSqlite uses it too)
  const d = new SQL.Database(fs.readFileSync(db));
  try {
    const r = d.exec(`SELECT key FROM prosody WHERE store = 'm' ORDER BY key`);
    return (r[0]?.values ?? []).map((v) => String(v[0]));
  } finally {
    d.close();
  }
}

/**
 * The records of an intact journal (format: journal.ts; read here independently of it): offset,
 * length and the map keys each one sets.
 */
function recordsOf(journal: string): { offset: number; length: number; keys: string[] }[] {
  const buf = fs.readFileSync(journal);
  const out: { offset: number; length: number; keys: string[] }[] = [];
  for (let pos = 16; pos + 8 <= buf.length; ) {
    const len = buf.readUInt32LE(pos);
    if (pos + 8 + len > buf.length) break;
    const stmts = JSON.parse(buf.subarray(pos + 8, pos + 8 + len).toString("utf8")) as [string, unknown[]][];
    const keys = stmts.filter(([sql]) => sql.startsWith("INSERT")).map(([, p]) => String(p[3]));
    out.push({ offset: pos, length: 8 + len, keys });
    pos += 8 + len;
  }
  return out;
}

function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, "r+");
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0]! ^= 0x04;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

const all = (prefixes: string[], each: number) => prefixes.flatMap((p) => Array.from({ length: each }, (_, i) => `${p}${i}`)).sort();

// ------------------------------------------------------------------------------------------------

test("a flipped bit in a middle record: server, prosodyctl and a writer refuse and change nothing; recover-journal salvages the rest", async () => {
  const { config, db, journal } = setup();
  const prefixes = ["a", "b", "c", "d", "e"];
  await writeInProcesses(db, prefixes, 2);
  const recs = recordsOf(journal);
  const withKeys = recs.filter((r) => r.keys.length > 0);
  assert.ok(withKeys.length >= 10, `records: ${recs.length}`);
  const victim = withKeys[withKeys.length - 5]!; // 4 intact records after it, written by 2+ other processes
  flipByte(journal, victim.offset + 8 + Math.floor((victim.length - 8) / 2));
  const after = recs.filter((r) => r.offset > victim.offset).length;
  const before = snapshot(path.dirname(db));
  const expected = new RegExp(`journal damaged: ${journal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: damaged record at byte ${victim.offset}, ${after} intact record\\(s\\) after it;.*storage recover-journal`);

  const server = await ctl(config, "start");
  assert.is.not(server.code, 0, "server start refused");
  assert.match(server.stderr, expected);
  assert.equal(snapshot(path.dirname(db)), before, "server start changed no file");

  const list = await ctl(config, "mod_invites_api", "list", "example.com");
  assert.is.not(list.code, 0, "prosodyctl list refused");
  assert.match(list.stdout + list.stderr, expected);
  assert.equal(snapshot(path.dirname(db)), before, "prosodyctl changed no file");

  const w = await writer("write", db, "z", "1");
  assert.is.not(w.code, 0, "writer refused");
  assert.match(w.stderr, expected);
  assert.equal(snapshot(path.dirname(db)), before, "writer changed no file");

  const rec = await ctl(config, "storage", "recover-journal");
  assert.is(rec.code, 0, rec.stdout + rec.stderr);
  assert.match(rec.stdout, `skipped: damaged bytes at offset ${victim.offset} (${victim.length} bytes)`);
  assert.not.ok(fs.existsSync(journal), "journal removed");
  const kept = fs.readdirSync(path.dirname(db)).filter((n) => n.includes(".before-recovery-"));
  assert.is(kept.length, 2, kept.join(","));
  for (const name of kept) {
    const orig = name.startsWith("prosody.sqlite.sqljs-journal") ? "prosody.sqlite.sqljs-journal" : "prosody.sqlite";
    assert.is(snapshot(path.dirname(db))[name], before[orig], `${name} holds the original ${orig}`);
  }
  const want = all(prefixes, 2).filter((k) => !victim.keys.includes(k));
  assert.equal(await keysIn(db), want, "every intact record, before and after the damage");
  // and the database is usable again by everyone
  const w2 = await writer("write", db, "z", "1");
  assert.is(w2.code, 0, w2.stderr);
});

test("torn tails are still ignored and cut: a partial last record, a bad CRC in the last record", async () => {
  for (const damage of ["partial", "crc"] as const) {
    const { db, journal } = setup();
    await writeInProcesses(db, ["a", "b"], 2);
    const recs = recordsOf(journal);
    const last = recs[recs.length - 1]!;
    if (damage === "partial") fs.truncateSync(journal, last.offset + Math.floor(last.length / 2));
    else flipByte(journal, last.offset + last.length - 3);
    const tail = fs.readFileSync(journal).subarray(last.offset);
    const w = await writer("write", db, "c", "1");
    assert.is(w.code, 0, `${damage}: ${w.stderr}`);
    // Never silently: a warning; a complete-length record with a bad checksum (power loss, or
    // damage to an acknowledged write) is also kept aside, byte for byte.
    const torn = fs.readdirSync(path.dirname(db)).filter((n) => n.startsWith("prosody.sqlite.sqljs-journal.torn-"));
    if (damage === "partial") {
      assert.match(w.stderr, `cut ${tail.length} byte(s) of an incomplete record after the last complete one (offset ${last.offset})`);
      assert.equal(torn, [], "an interrupted append is not kept");
    } else {
      assert.match(w.stderr, `the last record (offset ${last.offset}, ${tail.length} bytes) is damaged (checksum mismatch) and was cut`);
      assert.is(torn.length, 1, torn.join(","));
      assert.ok(fs.readFileSync(path.join(path.dirname(db), torn[0]!)).equals(tail), "the damaged bytes are kept");
      assert.match(w.stderr, torn[0]!);
    }
    const r = recordsOf(journal);
    assert.is(r.length, recs.length, `${damage}: the torn record was cut before the append`);
    assert.equal(r[r.length - 1]!.keys, ["c0"]);
    const expected = all(["a", "b", "c"], 2).filter((k) => !last.keys.includes(k) && k !== "c1");
    // the state any process sees (DB + intact records), then folded into the file
    const d = await DurableSqlite.open(db);
    const keys = d.all(`SELECT key FROM prosody WHERE store = 'm' ORDER BY key`).map((row) => String(row.key));
    await d.close({ compact: true });
    assert.equal(keys, expected, damage);
    assert.equal(await keysIn(db), expected, `${damage}: folded`);
  }
});

test("a damaged last record is reported and kept aside also when the journal is folded away (compaction, a compacting close)", async () => {
  const { db, journal } = setup();
  await writeInProcesses(db, ["a", "b"], 2);
  const recs = recordsOf(journal);
  const last = recs[recs.length - 1]!;
  flipByte(journal, last.offset + last.length - 3);
  const tail = fs.readFileSync(journal).subarray(last.offset);
  const warnings: string[] = [];
  const d = await DurableSqlite.open(db, { log: (_level, message) => warnings.push(message) });
  await d.compact(); // what the server does at start with leftover records: fold them into the file
  await d.close({ compact: true });
  assert.not.ok(fs.existsSync(journal), "journal folded and removed");
  const torn = fs.readdirSync(path.dirname(db)).filter((n) => n.startsWith("prosody.sqlite.sqljs-journal.torn-"));
  assert.is(torn.length, 1, torn.join(","));
  assert.ok(fs.readFileSync(path.join(path.dirname(db), torn[0]!)).equals(tail), "the damaged bytes are kept");
  assert.is(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, `the last record (offset ${last.offset}, ${tail.length} bytes) is damaged`);
});

test("database file missing while the journal holds records: refused, journal kept; recover --apply-anyway restores", async () => {
  const { config, db, journal } = setup();
  await writeInProcesses(db, ["a", "b", "c"], 2);
  fs.rmSync(db);
  const before = snapshot(path.dirname(db));
  const w = await writer("write", db, "z", "1");
  assert.is.not(w.code, 0, "writer refused");
  assert.match(w.stderr, `database file missing: ${db} does not exist but its journal ${journal} holds records`);
  const list = await ctl(config, "mod_invites_api", "list", "example.com");
  assert.is.not(list.code, 0);
  assert.match(list.stdout + list.stderr, "database file missing:");
  assert.equal(snapshot(path.dirname(db)), before, "nothing changed");

  const plain = await ctl(config, "storage", "recover-journal");
  assert.is(plain.code, 1, "needs an explicit choice");
  assert.match(plain.stdout, "is missing");
  assert.equal(snapshot(path.dirname(db)), before, "nothing changed");

  const rec = await ctl(config, "storage", "recover-journal", "--apply-anyway", db);
  assert.is(rec.code, 0, rec.stdout + rec.stderr);
  assert.equal(await keysIn(db), all(["a", "b", "c"], 2));
  assert.not.ok(fs.existsSync(journal));
});

test("database changed by real sqlite3 while our journal has records: refused, nothing changed; --discard-journal keeps sqlite3's file", async (ctx) => {
  if (!HAVE_SQLITE3) return skip(ctx, "sqlite3 is not installed (apt-get install sqlite3)");
  const { config, db, journal } = setup();
  await writeInProcesses(db, ["a"], 2); // first process: creates the file and the schema
  const fold = await ctl(config, "mod_invites_api", "list", "example.com"); // alone: folds a0, a1 into the file
  assert.is(fold.code, 0, fold.stdout + fold.stderr);
  assert.not.ok(fs.existsSync(journal));
  await writeInProcesses(db, ["b"], 2); // journal records b0, b1
  // Prosody's side: a0 "used" (deleted) directly in the file
  const s = spawnSync("sqlite3", [db, `DELETE FROM prosody WHERE store = 'm' AND key = 'a0'`], { encoding: "utf8" });
  assert.is(s.status, 0, s.stderr);
  const before = snapshot(path.dirname(db));
  const expected = `database changed by another program: ${db} is not the file this host wrote`;
  const w = await writer("write", db, "z", "1");
  assert.is.not(w.code, 0);
  assert.match(w.stderr, expected);
  assert.match(w.stderr, "holds 2 record(s) not yet in it");
  const server = await ctl(config, "start");
  assert.is.not(server.code, 0);
  assert.match(server.stderr, expected);
  const list = await ctl(config, "mod_invites_api", "list", "example.com");
  assert.is.not(list.code, 0);
  assert.equal(snapshot(path.dirname(db)), before, "nothing changed");

  const rec = await ctl(config, "storage", "recover-journal", "--discard-journal", "example.com");
  assert.is(rec.code, 0, rec.stdout);
  assert.not.ok(fs.existsSync(journal));
  assert.equal(await keysIn(db), ["a1"], "sqlite3's change stands; a0 does not come back");
  const w2 = await writer("write", db, "c", "1");
  assert.is(w2.code, 0, w2.stderr);
  const d = await DurableSqlite.open(db);
  assert.equal(d.all(`SELECT key FROM prosody WHERE store = 'm' ORDER BY key`).map((r) => String(r.key)), ["a1", "c0"]);
  await d.close({ compact: true });
});

test("a database made by sqlite3 (not by us) is used normally: no false refusal across processes", async (ctx) => {
  if (!HAVE_SQLITE3) return skip(ctx, "sqlite3 is not installed (apt-get install sqlite3)");
  const { db } = setup();
  fs.mkdirSync(path.dirname(db), { recursive: true });
  const s = spawnSync("sqlite3", [db, `CREATE TABLE "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL); INSERT INTO prosody VALUES ('example.com','','m','p0','string','x')`], { encoding: "utf8" });
  assert.is(s.status, 0, s.stderr);
  await writeInProcesses(db, ["a", "b"], 2);
  assert.equal(await keysIn(db + ""), ["p0"], "the file itself is only re-stamped until a fold");
  const d = await DurableSqlite.open(db);
  assert.equal(d.all(`SELECT key FROM prosody WHERE store = 'm' ORDER BY key`).map((r) => String(r.key)), ["a0", "a1", "b0", "b1", "p0"]);
  await d.close({ compact: true });
});

test("recover-journal refuses while another of our processes has the database open", async () => {
  const port = await freePort();
  const { config, db, journal } = setup(port);
  await writeInProcesses(db, ["a"], 1);
  const server = spawn(process.execPath, [PROSODYCTL, "--config", config, "--quiet", "start"], { cwd: path.dirname(config), stdio: "ignore" });
  const exited = new Promise((r) => server.on("exit", r));
  try {
    let up = false;
    for (let i = 0; i < 150 && !up; i++) {
      try {
        up = (await rawRequest(port, "GET /nothing-here HTTP/1.1\r\nHost: example.com\r\n\r\n", { timeoutMs: 500 })).status > 0;
      } catch {
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    assert.ok(up, "server up");
    await writeInProcesses(db, ["b"], 1); // a journal record while the server runs
    const before = snapshot(path.dirname(db));
    const r = await ctl(config, "storage", "recover-journal", db);
    assert.is(r.code, 1);
    assert.match(r.stdout, "has it open; stop it first");
    assert.equal(snapshot(path.dirname(db)), before);
    assert.ok(fs.existsSync(journal));
  } finally {
    server.kill("SIGTERM");
    await exited;
  }
});

test.run();
