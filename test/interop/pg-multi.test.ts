/**
 * Many writers on one PostgreSQL database (issue 14's multi-instance proof): a real Prosody 0.12.3
 * and three of our servers (separate processes, each its own HTTP port, otherwise one config) for
 * 20 s at once:
 * - API creates (`/invites_api?key=…`) on all four;
 * - CLI creates, one process after another: our `prosodyctl mod_invites_api create` and
 *   `mod_invites generate`, and real prosodyctl's `mod_invites_api create`;
 * - web registrations on ours, each single-use invite submitted to two of our instances at the same
 *   instant (two different user names);
 * - one of ours `kill -9`ed midway and started again.
 * Then, from the database itself (psql): every acknowledged invite and key is there exactly once,
 * no (host, user, store, key) row twice, at most one account per raced invite (the one answered
 * "Congratulations", the other racer 409 or 303 to the invalid-invite page); every 5xx was a 503 with Retry-After. Connection errors
 * are allowed only against the killed instance while it was down, and are counted apart.
 * PG_MULTI_SECONDS (default 20) and PG_MULTI_SEED change the run; the counts are printed.
 */
import { prng } from "../fixtures/internal/gen.js";
import { testSeed } from "../helpers/seed.js";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PROSODYCTL } from "../helpers/cli.js";
import { freePort, rawRequest, waitForHttp, type RawResponse } from "../helpers/http.js";
import { postgresMissing, startCluster } from "../helpers/postgres.js";
import { createInstance, prosodyMissing } from "../helpers/prosody.js";
import { skipIf } from "../helpers/skip.js";

const missing =
  postgresMissing() ??
  prosodyMissing() ??
  (spawnSync("dpkg", ["-s", "lua-dbi-postgresql"], { stdio: "ignore" }).status !== 0 ? "lua-dbi-postgresql not installed" : undefined);
const SECONDS = Number(process.env.PG_MULTI_SECONDS ?? 20);
const SEED = testSeed("PG_MULTI_SEED");
const KEY = /^([A-Za-z0-9_-]{12})\/([A-Za-z0-9_-]{36})$/;
const TOKEN = /([A-Za-z0-9_-]{24})$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


interface Ours {
  n: number;
  port: number;
  config: string;
  child?: ChildProcess;
  /** Connection errors against it are expected while this is set (from kill -9 until it listens again). */
  down: boolean;
}

skipIf(test, missing)(`3 of our servers and a real Prosody on one database for ${SECONDS} s, one of ours kill -9ed and restarted: nothing lost, nothing twice`, async () => {
  console.log(`\npg-multi: seed ${SEED} (PG_MULTI_SEED=${SEED} repeats it), ${SECONDS} s`);
  const rnd = prng(SEED);
  const cluster = await startCluster();
  const t = await cluster.createDatabase();
  const inst = await createInstance("sql", [], [], `sql = { driver = "PostgreSQL", database = "${t.database}", username = "${t.username}", host = "${t.host}", port = ${t.port} }`);
  const uid = Number(spawnSync("id", ["-u", "prosody"]).stdout.toString());
  const gid = Number(spawnSync("id", ["-g", "prosody"]).stdout.toString());
  // Our three configs: the shared file's text with their own port, pidfile and log, plus the web form.
  const shared = readFileSync(inst.config, "utf8");
  const ours: Ours[] = [];
  for (const n of [1, 2, 3]) {
    const port = await freePort();
    const config = join(inst.dir, `ours-${n}.cfg.lua`);
    const text = shared
      .replace(/^http_ports = .*$/m, `http_ports = { ${port} }`)
      .replace(/^log = .*$/m, `log = { warn = "${inst.dir}/ours-${n}.log" }\nprosody_ts_pidfile = "${inst.dir}/ours-${n}.pid"`)
      // Load from one address: our rate limits off (they have their own tests, invites/api-limits).
      .replace(/^modules_enabled = \{/m, `invites_api_rate = false\ninvites_api_rate_per_ip = false\nregister_web_rate_per_ip = false\nmodules_enabled = { "invites_register_web",`);
    writeFileSync(config, text);
    chownSync(config, uid, gid);
    ours.push({ n, port, config, down: false });
  }
  const start = async (o: Ours) => {
    o.child = spawn(process.execPath, [PROSODYCTL, "--config", o.config, "--quiet", "start"], { cwd: inst.dir, stdio: "ignore" });
    await waitForHttp(o.port, `our server ${o.n}`, () => readFileSync(join(inst.dir, `ours-${o.n}.log`), "utf8").slice(-2000), 30_000);
  };

  // What was acknowledged, and every answer.
  const ackedInvites = new Set<string>();
  const ackedKeys = new Set<string>();
  const statuses = new Map<string, number>();
  const fiveXX: string[] = [];
  const unexpectedErrors: string[] = [];
  let refusedWhileDown = 0;
  const races: Array<{ token: string; users: [string, string]; winners: string[]; losers: number[]; lost: boolean }> = [];
  const cli = { runs: 0, failed: [] as string[] };

  const count = (where: string, r: RawResponse) => {
    const k = `${where} ${r.status}`;
    statuses.set(k, (statuses.get(k) ?? 0) + 1);
    if (r.status >= 500) fiveXX.push(`${where}: ${r.status} retry-after=${r.header("retry-after") ?? "-"}`);
  };
  /** A request to port; a connection error is counted (if the target is down) or recorded as unexpected. */
  const send = async (target: Ours | "prosody", raw: string): Promise<RawResponse | undefined> => {
    const port = target === "prosody" ? inst.prosodyPort : target.port;
    const where = target === "prosody" ? "prosody" : `ours-${target.n}`;
    const wasDown = target !== "prosody" && target.down;
    try {
      const r = await rawRequest(port, raw, { timeoutMs: 10_000 });
      count(where, r);
      return r;
    } catch (err) {
      if (wasDown || (target !== "prosody" && target.down)) refusedWhileDown++;
      else unexpectedErrors.push(`${where}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n`;
  const form = (token: string, user: string) => {
    const body = new URLSearchParams({ user, password: "Tr0ub4dor&3-horse", token }).toString();
    return `POST /register?t=${token} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };

  try {
    await inst.startProsody();
    for (const o of ours) await start(o);
    const keys: string[] = [];
    for (let i = 0; i < 4; i++) {
      const k = (await inst.ourCtl(["mod_invites_api", "create", "example.com", `load-${i}`])).stdout.trim();
      assert.match(k, KEY);
      ackedKeys.add(k.split("/")[0]!);
      keys.push(k);
    }

    const end = Date.now() + SECONDS * 1000;
    const apiLoop = async (target: Ours | "prosody", key: string) => {
      while (Date.now() < end) {
        const r = await send(target, get(`/invites_api?key=${key}`));
        if (r?.status === 201) ackedInvites.add(TOKEN.exec(r.header("location") ?? "")?.[1] ?? `bad location ${r.header("location")}`);
        await sleep(40 + rnd() * 40);
      }
    };
    const cliLoop = async () => {
      for (let i = 0; Date.now() < end; i++) {
        cli.runs++;
        if (i % 3 === 0) {
          const r = await inst.ourCtl(["mod_invites_api", "create", "example.com", `cli-${i}`]);
          if (r.code === 0 && KEY.test(r.stdout.trim())) ackedKeys.add(r.stdout.trim().split("/")[0]!);
          else cli.failed.push(`ours create: ${r.code} ${r.stderr.slice(0, 300)}`);
        } else if (i % 3 === 1) {
          const r = await inst.ourCtl(["mod_invites", "generate", "example.com"]);
          const token = TOKEN.exec(r.stdout.trim())?.[1];
          if (r.code === 0 && token) ackedInvites.add(token);
          else cli.failed.push(`ours generate: ${r.code} ${r.stderr.slice(0, 300)}`);
        } else {
          const r = inst.realCtl(["mod_invites_api", "create", "example.com", `real-${i}`]);
          const k = r.stdout.trim().split("\n").pop() ?? "";
          if (r.code === 0 && KEY.test(k)) ackedKeys.add(k.split("/")[0]!);
          else cli.failed.push(`real create: ${r.code} ${r.stderr.slice(0, 300)}`);
        }
      }
    };
    const raceLoop = async () => {
      for (let i = 0; Date.now() < end; i++) {
        // The invite comes from any of the four (ours or Prosody's, both valid on our form).
        const from = rnd() < 0.25 ? "prosody" : ours[Math.floor(rnd() * 3)]!;
        const made = await send(from, get(`/invites_api?key=${keys[3]}`));
        const token = made?.status === 201 ? TOKEN.exec(made.header("location") ?? "")?.[1] : undefined;
        if (!token) {
          await sleep(50);
          continue;
        }
        ackedInvites.add(token);
        const a = Math.floor(rnd() * 3);
        const b = (a + 1 + Math.floor(rnd() * 2)) % 3;
        const users: [string, string] = [`race${i}a`, `race${i}b`];
        const answers = await Promise.all([send(ours[a]!, form(token, users[0])), send(ours[b]!, form(token, users[1]))]);
        const race = { token, users, winners: [] as string[], losers: [] as number[], lost: false };
        answers.forEach((r, j) => {
          if (!r) race.lost = true;
          else if (r.status === 200 && /Congratulations/.test(r.body.toString())) race.winners.push(users[j]!);
          else race.losers.push(r.status);
        });
        races.push(race);
        await sleep(30 + rnd() * 40);
      }
    };
    const killer = async () => {
      await sleep((SECONDS * 1000) / 2 - 1500);
      const victim = ours[1]!;
      victim.down = true;
      victim.child!.kill("SIGKILL");
      await new Promise((r) => victim.child!.once("exit", r));
      await sleep(3000);
      await start(victim);
      victim.down = false;
    };
    await Promise.all([...ours.map((o, i) => apiLoop(o, keys[i]!)), apiLoop("prosody", keys[0]!), cliLoop(), raceLoop(), killer()]);

    // From the database itself.
    const rows = (q: string) => cluster.psql(t.database, q).trim().split("\n").filter(Boolean);
    const duplicates = rows(`SELECT "host", "user", "store", "key", count(*) FROM "prosody" GROUP BY 1, 2, 3, 4 HAVING count(*) > 1`);
    assert.equal(duplicates, [], "no row twice");
    const invites = new Set(rows(`SELECT "key" FROM "prosody" WHERE "host" = 'example.com' AND "user" = '' AND "store" = 'invite_token'`));
    const keyIds = new Set(rows(`SELECT "key" FROM "prosody" WHERE "host" = 'example.com' AND "user" = '' AND "store" = 'invite_api_keys'`));
    const accounts = new Set(rows(`SELECT DISTINCT "user" FROM "prosody" WHERE "host" = 'example.com' AND "store" = 'accounts'`));
    const raced = new Set(races.map((r) => r.token));
    const missingInvites = [...ackedInvites].filter((tok) => !raced.has(tok) && !invites.has(tok));
    assert.equal(missingInvites, [], "every acknowledged invite (not raced) is in the database");
    assert.equal([...ackedKeys].filter((k) => !keyIds.has(k)), [], "every acknowledged key is in the database");
    for (const r of races) {
      const registered = r.users.filter((u) => accounts.has(u));
      assert.ok(r.winners.length <= 1, `${r.token}: two racers were told they registered`);
      assert.ok(registered.length <= 1, `${r.token}: two accounts from one single-use invite: ${registered.join(", ")}`);
      if (r.winners.length === 1) {
        assert.equal(registered, r.winners, `${r.token}: the account answered "Congratulations" is the one in the database`);
        assert.not.ok(invites.has(r.token), `${r.token}: used, yet still in the database`);
        // 409 "already used" when both got past the invite check; 303 to the invalid-invite page when
        // the winner had finished before the loser's check.
        if (!r.lost) assert.ok(r.losers.length === 1 && [303, 409].includes(r.losers[0]!), `${r.token}: the other racer is told the invite was used (${r.losers})`);
      } else if (!r.lost) assert.equal(registered, [], `${r.token}: nobody was told, yet an account exists`);
    }
    assert.equal(unexpectedErrors, [], "connection errors only against the killed instance while it was down");
    assert.equal(cli.failed, [], "every CLI run succeeded");
    assert.ok(fiveXX.every((s) => / 503 retry-after=\d+$/.test(s)), `5xx other than 503 with Retry-After: ${fiveXX.join("; ")}`);
    const won = races.filter((r) => r.winners.length === 1).length;
    console.log(
      `pg-multi: ${ackedInvites.size} invites and ${ackedKeys.size} keys acknowledged, all in the database; ` +
        `${races.length} races (${won} won once, ${races.filter((r) => r.lost).length} with a racer cut off by the kill), ${accounts.size} accounts; ` +
        `${cli.runs} CLI runs; ${refusedWhileDown} connection errors while one was down; 5xx: ${fiveXX.length}; ` +
        `answers: ${[...statuses].map(([k, v]) => `${k}×${v}`).join(", ")}`,
    );
    assert.ok(races.length >= 5 && won >= 3 && ackedInvites.size >= 50, "the run did enough to prove something");
  } finally {
    for (const o of ours) if (o.child && o.child.exitCode === null) o.child.kill("SIGTERM");
    await Promise.all(ours.map((o) => o.child && o.child.exitCode === null && new Promise((r) => o.child!.once("exit", r))));
    await inst.cleanup();
    cluster.stop();
  }
});

test.run();
