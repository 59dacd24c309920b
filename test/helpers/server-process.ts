/** `prosodyctl start` as a real child process on a free port, for tests that need a separate server. */
import { spawn, type ChildProcess } from "node:child_process";
import { PROSODYCTL, tempConfig } from "./cli.js";
import { freePort, rawRequest } from "./http.js";

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  dir: string;
  config: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Exit code (or signal name) once the process has exited. */
  exited: Promise<number | string | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | string | null>;
}

/**
 * Writes a config (`$PORT` and `$DIR` replaced; `data_path`, `http_ports` and `http_interfaces`
 * set unless `body` sets them) and starts the server; resolves once it answers HTTP.
 */
export async function startServerProcess(
  body: string,
  opts: { waitMs?: number; /** Runs in the config's directory before the server starts (e.g. writes certificates). */ prepare?: (dir: string) => void } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const defaults = [
    /\bdata_path\b/.test(body) ? "" : `data_path = "$DIR/data"`,
    /\bhttp_ports\b/.test(body) ? "" : `http_ports = { ${port} }`,
    /\bhttp_interfaces\b/.test(body) ? "" : `http_interfaces = { "127.0.0.1" }`,
  ].join("\n");
  const { dir, config } = tempConfig(`${defaults}\n${body.replaceAll("$PORT", String(port))}`);
  opts.prepare?.(dir);
  const child = spawn(process.execPath, [PROSODYCTL, "--config", config, "start"], {
    cwd: dir,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | string | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
  let gone = false;
  void exited.then(() => (gone = true));
  const server: ServerProcess = {
    child,
    port,
    dir,
    config,
    output: () => out,
    exited,
    async stop(graceMs = 10_000) {
      if (!gone) child.kill("SIGTERM");
      const timer = setTimeout(() => !gone && child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  const until = Date.now() + (opts.waitMs ?? 20_000);
  for (;;) {
    if (gone) throw new Error(`server exited before listening:\n${out}`);
    try {
      await rawRequest(port, "GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n", { timeoutMs: 1000 });
      return server;
    } catch {
      if (Date.now() > until) {
        child.kill("SIGKILL");
        throw new Error(`server did not listen on ${port}:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
