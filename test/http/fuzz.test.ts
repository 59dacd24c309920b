/**
 * Seeded HTTP fuzz over raw sockets against a real `prosodyctl start` with every bundled plugin
 * (cases from _fuzz-cases.ts). Must hold: the process never crashes or logs a stack trace, no
 * response is a 5xx (505 only for a request line with HTTP major version other than 1), every
 * response is well-formed, every well-formed request is answered, and no connection hangs: each
 * case is answered or closed by the server within a bound.
 *
 * `npm test` runs HTTP_FUZZ_REQUESTS (default 2500) requests. The full run (after `npm run build`):
 *   HTTP_FUZZ_REQUESTS=10000 HTTP_FUZZ_SEED=1234 node --import tsx test/http/fuzz.test.ts
 * HTTP_FUZZ_STORAGE=internal|sql|memory (default sql), HTTP_FUZZ_CONCURRENCY (default 32).
 * The seed (random unless HTTP_FUZZ_SEED or TEST_SEED gives it) is printed first and the counts at
 * the end, so any failure can be replayed.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prosodyctl } from "../helpers/cli.js";
import { seededRandom } from "../helpers/seed.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";
import { parseResponse } from "./_helpers.js";
import { createGenerator, rng, type FuzzCase, type FuzzInputs } from "./_fuzz-cases.js";

const REQUESTS = Number(process.env.HTTP_FUZZ_REQUESTS ?? 2500);
const { seed: SEED } = seededRandom("HTTP_FUZZ_SEED");
const CONCURRENCY = Number(process.env.HTTP_FUZZ_CONCURRENCY ?? 32);
/**
 * Storage driver of the fuzzed server. `internal` also exercises file names made from usernames:
 * before the long-name fix (issue 11 item 7) a username of 250+ encoded bytes gave a 500 there.
 */
const STORAGE = process.env.HTTP_FUZZ_STORAGE ?? "sql";
const HEADER_TIMEOUT_S = 2;
const REQUEST_TIMEOUT_S = 4;
/** A case must be answered or closed within its sending time plus this (timeouts + checks + slack). */
const BOUND_MS = (REQUEST_TIMEOUT_S + 4) * 1000;

interface Outcome {
  statuses: number[];
  closedByServer: boolean;
  hang: boolean;
  malformed?: string;
  ms: number;
}

/** Plays one case on a fresh connection and reads every response until close, enough answers, or the bound. */
function play(port: number, c: FuzzCase): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = net.connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let offset = 0;
    const statuses: number[] = [];
    let finals = 0;
    let malformed: string | undefined;
    let done = false;
    let sendTime = 0;
    const finish = (closedByServer: boolean, hang = false) => {
      if (done) return;
      done = true;
      clearTimeout(bound);
      socket.destroy();
      resolve({ statuses, closedByServer, hang, malformed, ms: Date.now() - started });
    };
    for (const ch of c.chunks) sendTime += ch.delay;
    const bound = setTimeout(() => finish(false, true), sendTime + BOUND_MS);
    socket.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        let parsed;
        try {
          parsed = parseResponse(buf.subarray(offset), c.heads[finals] ?? false);
        } catch (err) {
          malformed = `${(err as Error).message} in ${JSON.stringify(buf.subarray(offset, offset + 80).toString("latin1"))}`;
          return finish(false);
        }
        if (!parsed) break;
        offset += parsed.used;
        statuses.push(parsed.res.statusCode);
        if (parsed.res.statusCode >= 200) finals++;
      }
      // Everything answered: nothing more to wait for (the server may keep the connection open).
      if (!c.abort && finals >= c.requests) finish(false);
    });
    socket.on("error", () => undefined);
    socket.on("close", () => finish(true));
    socket.on("connect", async () => {
      for (const ch of c.chunks) {
        if (ch.delay) await new Promise((r) => setTimeout(r, ch.delay));
        if (done || socket.destroyed) return;
        socket.write(ch.data);
      }
      if (c.abort) {
        socket.destroy();
        finish(false);
      } else if (c.halfClose) socket.end();
    });
  });
}

let srv: ServerProcess;
const inputs: FuzzInputs = { tokens: [], key: "" };

test.before(async () => {
  srv = await startServerProcess(`
http_header_timeout = ${HEADER_TIMEOUT_S}
http_request_timeout = ${REQUEST_TIMEOUT_S}
http_keepalive_timeout = 2
storage = "${STORAGE}"
sql = { driver = "SQLite3", database = "prosody.sqlite" }
VirtualHost "example.com"
modules_enabled = { "http", "invites", "invites_api", "invites_page", "register_apps", "invites_register", "invites_register_web", "auth_internal_hashed", "password_policy" }
VirtualHost "example.org"
modules_enabled = { "http" }
`);
  const key = await prosodyctl(["--config", srv.config, "mod_invites_api", "create", "example.com", "fuzz"], { cwd: srv.dir });
  assert.is(key.code, 0, key.stderr);
  inputs.key = key.stdout.trim();
  for (let i = 0; i < 5; i++) {
    const gen = await prosodyctl(["--config", srv.config, "mod_invites", "generate", "example.com"], { cwd: srv.dir });
    const t = /preauth=([A-Za-z0-9_-]+)/.exec(gen.stdout)?.[1];
    if (t) inputs.tokens.push(t);
  }
  assert.ok(inputs.tokens.length > 0);
});

test.after(async () => {
  if (srv) assert.is(await srv.stop(), 0, "clean stop after the fuzz");
});

test(`HTTP fuzz: ${REQUESTS} requests, 0 crashes, 0 5xx, 0 hangs`, async () => {
  const next = createGenerator(rng(SEED), inputs);
  const histogram = new Map<number | string, number>();
  const kinds = new Map<string, number>();
  const failures: string[] = [];
  let requests = 0;
  let cases = 0;
  let slowest = 0;
  const started = Date.now();
  let dumpDir: string | undefined;
  /** A failing case's exact bytes, for replaying it (`nc 127.0.0.1 PORT < file`). */
  const dump = (id: number, c: FuzzCase) => {
    dumpDir ??= mkdtempSync(join(tmpdir(), "http-fuzz-"));
    const file = join(dumpDir, `case-${id}.bin`);
    writeFileSync(file, Buffer.concat(c.chunks.map((x) => x.data)));
    return file;
  };

  const worker = async () => {
    while (requests < REQUESTS && failures.length < 20) {
      const c = next();
      const id = ++cases;
      requests += c.requests;
      kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + c.requests);
      const o = await play(srv.port, c);
      slowest = Math.max(slowest, o.ms);
      const describe = () => `case #${id} (${c.kind}, seed ${SEED}, bytes in ${dump(id, c)}) ${JSON.stringify(Buffer.concat(c.chunks.map((x) => x.data)).toString("latin1").slice(0, 300))} → ${o.statuses.join(",") || "nothing"}${o.closedByServer ? ", closed" : ""}`;
      for (const s of o.statuses) histogram.set(s, (histogram.get(s) ?? 0) + 1);
      if (o.statuses.length === 0) histogram.set(o.closedByServer ? "closed without answer" : "client gave up", (histogram.get(o.closedByServer ? "closed without answer" : "client gave up") ?? 0) + 1);
      if (o.hang) failures.push(`hang (${o.ms} ms): ${describe()}`);
      if (o.malformed) failures.push(`malformed response: ${o.malformed}: ${describe()}`);
      for (const s of o.statuses) {
        if (s >= 500 && !(s === 505 && c.badVersion)) failures.push(`${s}: ${describe()}`);
      }
      const finals = o.statuses.filter((s) => s >= 200).length;
      if (!o.hang && finals < c.mustAnswer) failures.push(`unanswered (${finals}/${c.mustAnswer}): ${describe()}`);
      // Harvest fresh invite tokens from the API's answers' Location (… ?TOKEN).
      if (inputs.tokens.length < 200 && o.statuses.some((s) => s === 201 || s === 303)) inputs.tokens.push(...(await freshTokens()));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));

  const alive = srv.child.exitCode === null && srv.child.signalCode === null;
  const traces = srv.output().split("\n").filter((l) => /^\s+at |Unhandled|uncaught|FATAL/i.test(l));
  const summary = [
    `HTTP fuzz: seed ${SEED}, storage ${STORAGE}, ${requests} requests in ${cases} cases, ${((Date.now() - started) / 1000).toFixed(1)} s, slowest case ${slowest} ms`,
    `  by kind: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}`,
    `  statuses: ${[...histogram].sort((a, b) => String(a[0]).localeCompare(String(b[0]))).map(([s, n]) => `${s}: ${n}`).join(", ")}`,
    `  server alive: ${alive}; stack traces in its log: ${traces.length}; failures: ${failures.length}`,
  ];
  console.log(summary.join("\n"));
  assert.ok(alive, `the server process died:\n${srv.output().slice(-3000)}`);
  assert.equal(traces, [], "no stack traces in the server's log");
  assert.equal(failures, [], failures.join("\n"));
  assert.ok(requests >= REQUESTS);
});

/** New invites through the API (Location = landing page ?TOKEN), to keep valid tokens in play. */
async function freshTokens(): Promise<string[]> {
  const out: string[] = [];
  const res = await new Promise<string>((resolve) => {
    const s = net.connect(srv.port, "127.0.0.1", () => s.write(`GET /invites_api HTTP/1.1\r\nHost: example.com\r\nAuthorization: Bearer ${inputs.key}\r\nConnection: close\r\n\r\n`));
    let text = "";
    s.on("data", (d) => (text += d));
    s.on("error", () => resolve(text));
    s.on("close", () => resolve(text));
  });
  const t = /\r\nLocation: [^\r]*\?([A-Za-z0-9_-]{24})\r\n/i.exec(res)?.[1];
  if (t) out.push(t);
  return out;
}

test.run();
