// Helpers shared by the bench scripts: tools from apt, free ports, and stores prefilled with
// invites shaped like Prosody's (SQLite rows, or one invite_token.dat in internal storage).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";

export const isRoot = process.getuid?.() === 0;

export function have(cmd) {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** `cmd` is on PATH, installing apt package `pkg` first when missing and running as root. */
export function ensureApt(cmd, pkg) {
  if (have(cmd)) return true;
  if (!isRoot) return false;
  console.error(`[bench] installing ${pkg} from apt…`);
  spawnSync("sh", ["-c", `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg} >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}) >/dev/null 2>&1`]);
  return have(cmd);
}

export const freePort = () =>
  new Promise((res) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const DDL = `CREATE TABLE IF NOT EXISTS "prosody" ("host" TEXT NOT NULL, "user" TEXT NOT NULL, "store" TEXT NOT NULL, "key" TEXT NOT NULL, "type" TEXT NOT NULL, "value" TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS "prosody_index" ON "prosody" ("host", "user", "store", "key");`;

/** Fills a fresh SQLite file with `n` invite rows shaped like Prosody's (needs the sqlite3 command). */
export function prepopulate(file, n) {
  if (n === 0) return;
  if (!have("sqlite3")) throw new Error("sqlite3 is needed to prepopulate (apt install sqlite3)");
  const now = Math.floor(Date.now() / 1000);
  const sql = `${DDL}
BEGIN;
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${n})
INSERT INTO prosody SELECT 'example.com', '', 'invite_token', printf('pre%021d', i), 'json',
  printf('{"token":"pre%021d","type":"register","jid":"example.com","allow_registration":true,"uri":"xmpp:example.com?register;preauth=pre%021d","created_at":${now},"expires":${now + 604800},"additional_data":{"source":"bench"}}', i, i) FROM c;
COMMIT;`;
  execFileSync("sqlite3", [file], { input: sql });
}

/** The same invites as Prosody's internal storage keeps them: one invite_token.dat for the host. */
export function prepopulateInternal(dataDir, n) {
  if (n === 0) return;
  const now = Math.floor(Date.now() / 1000);
  const dir = join(dataDir, "example%2ecom");
  mkdirSync(dir, { recursive: true });
  const parts = ["return {\n"];
  for (let i = 1; i <= n; i++) {
    const t = `pre${String(i).padStart(21, "0")}`;
    parts.push(`\t["${t}"] = {\n\t\t["token"] = "${t}";\n\t\t["type"] = "register";\n\t\t["jid"] = "example.com";\n\t\t["allow_registration"] = true;\n\t\t["uri"] = "xmpp:example.com?register;preauth=${t}";\n\t\t["created_at"] = ${now};\n\t\t["expires"] = ${now + 604800};\n\t\t["additional_data"] = {\n\t\t\t["source"] = "bench";\n\t\t};\n\t};\n`);
  }
  parts.push("};\n");
  writeFileSync(join(dir, "invite_token.dat"), parts.join(""));
}

/** The store a server starts from: `rows` invites in the chosen storage's files under dir/data. */
export function prefill(dir, storage, rows) {
  mkdirSync(join(dir, "data"), { recursive: true });
  if (storage === "sql") prepopulate(join(dir, "data", "prosody.sqlite"), rows);
  else prepopulateInternal(join(dir, "data"), rows);
}

/** The value after `--name` on the command line, else `dflt`. */
export function opt(args, name, dflt) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
}

/** Resolves once something accepts connections on 127.0.0.1:`port`; throws after `ms`. */
export async function waitHttp(port, ms = 20000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((res) => {
      const sock = connect(port, "127.0.0.1", () => {
        sock.destroy();
        res(true);
      });
      sock.on("error", () => res(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on ${port}`);
}

/** Exits with a one-line reason unless the build exists in `root`/dist and each tool is there. */
export function preflight(root, tools = []) {
  if (!existsSync(join(root, "dist", "cli.js"))) {
    console.error("bench: run `npm run build` first");
    process.exit(1);
  }
  for (const tool of tools) {
    if (!ensureApt(tool, tool)) {
      console.error(`bench: ${tool} is not installed (apt install ${tool})`);
      process.exit(1);
    }
  }
}

/**
 * Node options our server runs with, as the README's systemd unit, `npm start` and `prosodyctl
 * restart` start it (SERVER_NODE_FLAGS in src/cli/daemon.ts; test/cli/server-node-flags.test.ts
 * keeps them equal).
 */
export const SERVER_NODE_ARGS = ["--max-semi-space-size=1"];
