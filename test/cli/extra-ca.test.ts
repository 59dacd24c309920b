/**
 * NODE_EXTRA_CA_CERTS through prosodyctl's executable (src/util/extra-ca.ts): node starts without
 * it (its first line), the processes prosodyctl starts get it back, and what prosodyctl connects
 * to over TLS is checked against those certificates as before: https requests of a plugin command,
 * and a PostgreSQL server when PGSSLMODE asks for TLS. Runs the executable itself (its `#!` line),
 * as an admin does, after `npm run build`.
 */
import { createServer, type Server } from "node:https";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { makeCert, opensslMissing } from "../helpers/certs.js";
import { prosodyctl, tempConfig, type Ran } from "../helpers/cli.js";
import { postgresMissing, startCluster } from "../helpers/postgres.js";
import { skip } from "../helpers/skip.js";

/** prosodyctl run as a program (its `#!` line), or through `node` when `viaNode`. */
function run(args: string[], env: NodeJS.ProcessEnv, opts: { cwd?: string; viaNode?: boolean } = {}): Promise<Ran> {
  // This machine may set NODE_EXTRA_CA_CERTS; each test says what it wants.
  return prosodyctl(args, { cwd: opts.cwd, asTyped: !opts.viaNode, env: { PROSODY_TS_SYSTEM_CONFIG: "", NODE_EXTRA_CA_CERTS: undefined, ...env } });
}

const missing = opensslMissing();
const dir = mkdtempSync(join(tmpdir(), "prosody-ts-extra-ca-"));
const CERT = join(dir, "ca.pem");
const KEY = join(dir, "ca.key");
if (!missing) makeCert(CERT, KEY, { cn: "extra-ca test", dns: ["localhost"], ip: ["127.0.0.1"] });

/** A plugin command: how node was started, what its children would get, and an https GET. */
const PROBE = `
import https from "node:https";
import { readFileSync } from "node:fs";
export const command = (args, ctx) => new Promise((resolve) => {
  const started = readFileSync("/proc/self/environ", "latin1").split("\\0").some((e) => e.startsWith("NODE_EXTRA_CA_CERTS="));
  ctx.print("node started with NODE_EXTRA_CA_CERTS: " + started);
  ctx.print("for child processes: " + (process.env.NODE_EXTRA_CA_CERTS ?? "-") + " / " + (process.env.PROSODY_TS_NODE_EXTRA_CA_CERTS ?? "-"));
  https.get(args[0], (res) => { res.resume(); ctx.print("GET " + res.statusCode); resolve(0); })
    .on("error", (err) => { ctx.print("GET failed: " + err.code); resolve(1); });
});
`;
const plugins = join(dir, "plugins");
mkdirSync(join(plugins, "mod_tlsprobe"), { recursive: true });
writeFileSync(join(plugins, "mod_tlsprobe", "mod_tlsprobe.mjs"), PROBE);
const cfg = tempConfig(`plugin_paths = { ${JSON.stringify(plugins)} }\ndata_path = "$DIR/data"\nVirtualHost "example.com"\n`);

let server: Server | undefined;
let url = "";
test.before(async () => {
  if (missing) return;
  server = createServer({ cert: readFileSync(CERT), key: readFileSync(KEY) }, (_req, res) => res.end("ok"));
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
test.after(() => {
  server?.close();
});

const probe = (env: NodeJS.ProcessEnv, viaNode = false) => run(["--config", cfg.config, "mod_tlsprobe", url], env, { cwd: cfg.dir, viaNode });

test("the executable starts node without NODE_EXTRA_CA_CERTS, and its https requests still trust the file", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const r = await probe({ NODE_EXTRA_CA_CERTS: CERT });
  assert.is(r.stderr, "");
  assert.is(r.stdout, `node started with NODE_EXTRA_CA_CERTS: false\nfor child processes: ${CERT} / -\nGET 200\n`);
  assert.is(r.code, 0);
});

test("without the variable the test's certificate is not trusted (the check above means something)", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const r = await probe({});
  assert.match(r.stdout, /^node started with NODE_EXTRA_CA_CERTS: false\nfor child processes: - \/ -\nGET failed: [A-Z_]+\n$/);
  assert.is.not(r.code, 0);
});

test("run through node itself, node loads the file as usual and nothing is handed over", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const r = await probe({ NODE_EXTRA_CA_CERTS: CERT }, true);
  assert.is(r.stdout, `node started with NODE_EXTRA_CA_CERTS: true\nfor child processes: ${CERT} / -\nGET 200\n`);
});

test("a file that cannot be read: node's warning, worded as node's, and node's roots alone", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const gone = join(dir, "no-such.pem");
  const r = await probe({ NODE_EXTRA_CA_CERTS: gone });
  assert.match(r.stderr, new RegExp(`^Warning: Ignoring extra certs from \`${gone}\`, load failed: .+\\n$`));
  assert.match(r.stdout, /GET failed: [A-Z_]+\n$/);
});

test("a command that makes no TLS connection never reads the file", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const r = await run(["--config", cfg.config, "about"], { NODE_EXTRA_CA_CERTS: join(dir, "no-such.pem") }, { cwd: cfg.dir });
  assert.is(r.code, 0);
  assert.is(r.stderr, "");
});

test("PostgreSQL with PGSSLMODE=verify-full: the server's certificate is checked against the file", async (ctx) => {
  const why = missing ?? postgresMissing();
  if (why) return skip(ctx, why);
  const cluster = await startCluster({ tls: { cert: CERT, key: KEY } });
  try {
    const db = await cluster.createDatabase();
    const sql = tempConfig(`
storage = "sql"
sql = { driver = "PostgreSQL", database = ${JSON.stringify(db.database)}, username = "postgres", host = "127.0.0.1", port = ${db.port} }
VirtualHost "example.com"
  modules_enabled = { "invites", "invites_api" }
`);
    const create = (env: NodeJS.ProcessEnv) => run(["--config", sql.config, "mod_invites_api", "create", "example.com"], { PGSSLMODE: "verify-full", ...env }, { cwd: sql.dir });
    const trusted = await create({ NODE_EXTRA_CA_CERTS: CERT });
    assert.is(trusted.code, 0, trusted.stdout + trusted.stderr);
    assert.match(trusted.stdout, /^[A-Za-z0-9_\/+-]{20,}=*\n$/);
    const untrusted = await create({});
    assert.is.not(untrusted.code, 0);
    assert.match(untrusted.stdout + untrusted.stderr, /certificate/i);
  } finally {
    cluster.stop();
  }
});

test.run();
