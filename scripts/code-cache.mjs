/**
 * Build step (tsup.config.ts): makes dist/cli-fast.cjs.cache, the V8 code cache prosodyctl-shim/
 * prosodyctl compiles its bundle with. V8 caches the functions a run compiled, so the cache is
 * written by a real run of the executable on the path that matters most for speed: a command the
 * running server runs. A stand-in server on a temporary admin socket answers it, as the real one
 * does (src/cli/admin-socket.ts's protocol), so nothing else has to run. Failing here is a warning:
 * prosodyctl works without the cache, only ~4 ms slower to start.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));

/** Writes dist/cli-fast.cjs.cache; resolves with an error message, or undefined when done. */
export async function buildCodeCache() {
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-code-cache-"));
  const server = net.createServer((sock) => {
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("error", () => undefined);
    sock.on("data", (chunk) => {
      buf += chunk;
      if (!buf.includes("\n")) return;
      const line = (text) => sock.write(`${JSON.stringify(text)}\n`);
      line({ t: "started" });
      line({ t: "out", d: "" });
      line({ t: "exit", code: 0 });
      sock.end();
    });
    sock.write(`${JSON.stringify({ t: "hello", v: 1 })}\n`);
  });
  try {
    const cfg = join(dir, "prosody.cfg.lua");
    // run_as_root: a root build stays root, so the run can write the cache into this directory.
    writeFileSync(cfg, `run_as_root = true\ndata_path = ${JSON.stringify(dir)}\nVirtualHost "example.com"\n`);
    await new Promise((ok, fail) => server.once("error", fail).listen(join(dir, "prosody-ts.sock"), ok));
    const out = join(dir, "cli-fast.cjs.cache");
    const ctl = join(root, "prosodyctl-shim", "prosodyctl");
    const { code, stderr } = await new Promise((done) => {
      // The executable itself: V8 accepts a cache only under the node options it was made with,
      // and its first line gives node the server's options (src/cli/daemon.ts SERVER_NODE_FLAGS).
      const child = spawn(ctl, ["--config", cfg, "mod_invites_api", "list", "example.com"], {
        cwd: dir,
        env: { ...process.env, NODE_OPTIONS: "", PROSODY_TS_CODE_CACHE: `write:${out}` },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let err = "";
      child.stderr.on("data", (d) => (err += d));
      child.on("close", (c) => done({ code: c, stderr: err }));
      setTimeout(() => child.kill("SIGKILL"), 30_000).unref();
    });
    if (code !== 0) return `the training run exited ${code}: ${stderr.trim()}`;
    renameSync(out, join(root, "dist", "cli-fast.cjs.cache"));
    return undefined;
  } catch (err) {
    return String(err instanceof Error ? err.message : err);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
