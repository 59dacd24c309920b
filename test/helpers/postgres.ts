/**
 * A private PostgreSQL cluster for one test process (never the system service): initdb in a
 * temporary directory (as the `postgres` user, or `nobody`: initdb refuses root), listening on a
 * unix socket in that directory and on a free 127.0.0.1 port, trust authentication for user
 * `postgres`. It stops by itself: at the process's exit (`pg_ctl -m immediate stop`), and, should
 * the process be killed, through a detached watchdog that waits for it to disappear.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { PgTarget } from "../../src/storage/drivers/sql-pg.js";
import { freePort } from "./http.js";

/** The server binaries (the newest installed major version), or undefined. */
function binDir(): string | undefined {
  const base = "/usr/lib/postgresql";
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, "bin", "initdb")) && existsSync(join(base, v, "bin", "pg_ctl")))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(base, versions[0], "bin");
}

/** The user to run the cluster as. */
function clusterUser(): string | undefined {
  for (const u of ["postgres", "nobody"]) if (spawnSync("id", ["-u", u], { stdio: "ignore" }).status === 0) return u;
  return undefined;
}

/** Why no private cluster can be started here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  if (!binDir()) return "PostgreSQL server not installed (apt install postgresql)";
  if (process.getuid?.() !== 0) return "a private PostgreSQL cluster needs root (initdb runs as the postgres or nobody user)";
  if (!clusterUser()) return "no postgres or nobody user to run initdb as";
  return undefined;
}

export interface PgCluster {
  /** The socket directory (also the cluster's temporary directory). */
  dir: string;
  port: number;
  /** A new, empty database; `sql` options reaching it over TCP (user postgres, trust). */
  createDatabase(name?: string): Promise<Required<Omit<PgTarget, "password">>>;
  /** psql's output for `command` on `database` (unaligned, tuples only unless `raw`). */
  psql(database: string, command: string, opts?: { raw?: boolean }): string;
  /** Restarts the server (`pg_ctl restart -m mode`): every connection is cut, the cluster is back after. */
  restart(mode: "fast" | "immediate"): Promise<void>;
  /** Stops the server but keeps the cluster (`pg_ctl stop -m mode`), so that up() can start it again. */
  down(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts the server again after down(), on the same socket directory and port. */
  up(): Promise<void>;
  stop(): void;
}

let counter = 0;

/**
 * Starts a cluster (see the header); throws when it cannot (check postgresMissing() first).
 * @param opts.durable commits wait for the disk (fsync on, as in production); by default they do
 *   not (`-F`: tests need no crash safety and should not wait for the disk)
 * @param opts.tls the server also offers TLS with this certificate and key (PEM files, copied)
 */
export async function startCluster(opts: { durable?: boolean; tls?: { cert: string; key: string } } = {}): Promise<PgCluster> {
  const bin = binDir()!;
  const user = clusterUser()!;
  const uid = Number(execFileSync("id", ["-u", user]).toString());
  const gid = Number(execFileSync("id", ["-g", user]).toString());
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-pg-"));
  chownSync(dir, uid, gid);
  chmodSync(dir, 0o755); // the socket is used by us (root) and by a real Prosody (prosody user)
  const data = join(dir, "data");
  const as = (cmd: string, args: string[]) => spawnSync("runuser", ["-u", user, "--", join(bin, cmd), ...args], { cwd: dir, encoding: "utf8" });
  const init = as("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]);
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const port = await freePort();
  let tlsOptions = "";
  if (opts.tls) {
    // PostgreSQL wants its key owned by the user it runs as, readable by no one else.
    for (const [name, from] of [["server.crt", opts.tls.cert], ["server.key", opts.tls.key]] as const) {
      copyFileSync(from, join(dir, name));
      chownSync(join(dir, name), uid, gid);
      chmodSync(join(dir, name), 0o600);
    }
    tlsOptions = ` -c ssl=on -c ssl_cert_file=${join(dir, "server.crt")} -c ssl_key_file=${join(dir, "server.key")}`;
  }
  const options = `-k ${dir} -h 127.0.0.1 -p ${port}${opts.durable ? "" : " -F"} -c max_connections=50${tlsOptions}`;
  // Not spawnSync: a test's own requests keep flowing while the server restarts.
  const pgCtl = (action: string, ...args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn("runuser", ["-u", user, "--", join(bin, "pg_ctl"), "-D", data, "-l", join(dir, "log"), "-w", "-o", options, ...args, action], { cwd: dir });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`pg_ctl ${action} failed: ${out}`))));
    });
  const start = as("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-o", options, "start"]);
  if (start.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`pg_ctl start failed: ${start.stderr}${start.stdout}`);
  }
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    as("pg_ctl", ["-D", data, "-m", "immediate", "stop"]);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", stop);
  // If this process is killed (no exit handler runs), the watchdog stops the cluster.
  const watchdog = spawn(
    "sh",
    ["-c", `while kill -0 ${process.pid} 2>/dev/null && [ -d "${data}" ]; do sleep 1; done; [ -d "${data}" ] && runuser -u ${user} -- "${bin}/pg_ctl" -D "${data}" -m immediate stop; rm -rf "${dir}"`],
    { detached: true, stdio: "ignore" },
  );
  watchdog.unref();

  const psql = (database: string, command: string, opts: { raw?: boolean } = {}) => {
    const r = spawnSync(join(bin, "psql"), ["-X", "-h", dir, "-p", String(port), "-U", "postgres", "-d", database, ...(opts.raw ? [] : ["-At"]), "-c", command], {
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`psql ${command}: ${r.stderr}`);
    return r.stdout;
  };
  return {
    dir,
    port,
    psql,
    stop,
    restart: (mode) => pgCtl("restart", "-m", mode),
    down: (mode = "fast") => pgCtl("stop", "-m", mode),
    up: () => pgCtl("start"),
    async createDatabase(name = `t${process.pid}_${counter++}`) {
      const client = new pg.Client({ host: dir, port, user: "postgres", database: "postgres" });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${name}"`);
      } finally {
        await client.end();
      }
      return { database: name, username: "postgres", host: "127.0.0.1", port };
    },
  };
}
