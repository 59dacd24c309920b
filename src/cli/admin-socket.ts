/**
 * The running server's admin socket: prosodyctl runs its account and plugin commands inside the
 * server that serves its config (our analogue of Prosody's mod_admin_socket). A unix socket,
 * `prosody-ts.sock` in the data directory (Prosody's own is `prosody.sock` there, so both can
 * share one data directory); option `prosody_ts_admin_socket`: another path (relative to the data
 * directory), or false for none.
 *
 * Who may connect: the socket file is mode 0660, owned by the data directory's owner and group
 * (root may always connect). Node cannot read a peer's credentials, so the file's permissions
 * are the whole check; the data directory's own permissions apply on top.
 *
 * Protocol: one JSON object per line each way. The server greets with {t:"hello", v:1}; the
 * client sends one {t:"run", v:1} (argv, cwd, how to name the command, which config it found),
 * without waiting for the greeting (a run of another version is refused); the server
 * answers {t:"refused"} (the client then runs the command itself: nothing has run) or
 * {t:"started"} and runs it, streaming {t:"out"} / {t:"err"} text, {t:"read"} when adduser/passwd need a password (the
 * client reads it and sends {t:"answer"}), {t:"alive"} every few seconds, and {t:"exit"} last.
 */
import net from "node:net";
import { chmodSync, chownSync, lstatSync, mkdirSync, statSync, unlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Config } from "../core/config/index.js";
import { createLogger } from "../core/logger.js";
import { dataDirOf } from "../core/data-dir.js";
import { INTERRUPTED, type PasswordInput } from "./io.js";
import { HEARTBEAT_MS, adminSocketPath, configIdentity, readMessages, send, type RunRequest } from "./admin-protocol.js";

export { ADMIN_SOCKET_NAME, ADMIN_SOCKET_OPTION, HEARTBEAT_MS, adminSocketPath, configIdentity, readMessages, send, type RunRequest } from "./admin-protocol.js";

const log = createLogger("admin_socket");

/** Output gathered for one message at most (the client's line limit is 4 MiB). */
const OUT_BATCH_MAX = 64 * 1024;

/** Where a command run for a client writes and reads. */
export interface ClientIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  passwordInput: PasswordInput;
}

export type Runner = (req: RunRequest, io: ClientIO) => Promise<number>;

function parseRequest(msg: Record<string, unknown>): RunRequest | undefined {
  const { argv, cwd, argv0, command, config, width } = msg;
  if (msg.t !== "run" || !Array.isArray(argv) || !argv.every((a) => typeof a === "string")) return undefined;
  // Clients before the version was sent spoke version 1 too.
  if (msg.v !== undefined && msg.v !== 1) return undefined;
  if (typeof cwd !== "string" || typeof argv0 !== "string") return undefined;
  if (command !== undefined && typeof command !== "string") return undefined;
  if (config !== null && typeof config !== "string") return undefined;
  if (width !== undefined && !(Number.isInteger(width) && (width as number) > 0 && (width as number) < 10_000)) return undefined;
  return { argv: argv as string[], cwd, argv0, command, config, width: width as number | undefined };
}

export interface AdminSocket {
  path: string;
  /** Stops accepting, waits (up to `graceMs`) for commands still running, removes the socket file. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Listens on the config's admin socket and runs each client's request with `run`. Undefined (after
 * a warning) when there is none to open: turned off, another live process serves it, or the path
 * is something else than a socket.
 */
export async function openAdminSocket(config: Config, cwd: string, run: Runner): Promise<AdminSocket | undefined> {
  const path = adminSocketPath(config, cwd);
  if (!path) return undefined;
  const identity = configIdentity(config, cwd);
  // A request resolving the data directory elsewhere (another working directory, a relative
  // data_path) is not for this server: the command would act on other files, as the server's user.
  const dataDir = dataDirOf(config, cwd);
  const ours = (req: RunRequest) => req.config === identity && dataDirOf(config, req.cwd) === dataDir;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
    if (!(await clearStale(path))) return undefined;
  } catch (err) {
    log("warn", "No admin socket at %s: %s", path, err);
    return undefined;
  }
  const running = new Set<Promise<unknown>>();
  const server = net.createServer((sock) => {
    const done = serveClient(sock, ours, run);
    running.add(done);
    void done.finally(() => running.delete(done));
  });
  // Created without group/other access from the start (bind happens inside listen()).
  const umask = process.umask(0o117);
  try {
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(path, () => {
        server.off("error", fail);
        ok();
      });
    });
  } catch (err) {
    log("warn", "No admin socket at %s: %s", path, err);
    return undefined;
  } finally {
    process.umask(umask);
  }
  server.on("error", (err) => log("error", "Admin socket %s: %s", path, err));
  let ino: number | undefined;
  try {
    chmodSync(path, 0o660);
    const dir = statSync(dirname(path));
    try {
      chownSync(path, dir.uid, dir.gid);
    } catch {
      try {
        chownSync(path, -1, dir.gid);
      } catch {
        // Not root and not in the directory's group: the socket stays ours (owner and our group).
      }
    }
    ino = lstatSync(path).ino;
  } catch (err) {
    log("warn", "Admin socket %s: could not set its permissions (%s); closing it", path, err);
    server.close();
    return undefined;
  }
  log("debug", "prosodyctl commands are run through %s", path);
  return {
    path,
    async close(graceMs = 10_000) {
      server.close();
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // Already gone.
      }
      if (running.size) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.allSettled([...running]), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
        clearTimeout(timer);
      }
    },
  };
}

/** True when the path is free (a dead socket left there is removed). */
async function clearStale(path: string): Promise<boolean> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return true;
  }
  if (!st.isSocket()) {
    log("warn", "No admin socket: %s exists and is not a socket", path);
    return false;
  }
  const alive = await new Promise<boolean>((ok) => {
    const probe = net.connect(path);
    probe.once("connect", () => {
      probe.destroy();
      ok(true);
    });
    probe.once("error", () => ok(false));
  });
  if (alive) {
    log("warn", "No admin socket: another process serves %s", path);
    return false;
  }
  unlinkSync(path);
  return true;
}

/** One connection: greeting, one request, the command's output and exit code. */
function serveClient(sock: net.Socket, ours: (req: RunRequest) => boolean, run: Runner): Promise<void> {
  return new Promise((finish) => {
    let started = false;
    let heartbeat: NodeJS.Timeout | undefined;
    const answers: Array<(value: string | undefined | typeof INTERRUPTED) => void> = [];
    const onEnd = () => {
      clearInterval(heartbeat);
      // A client gone mid-prompt reads as end of input (the command cancels).
      while (answers.length) answers.shift()!(undefined);
      if (!started) finish();
    };
    sock.on("error", () => undefined);
    sock.on("close", onEnd);
    // A client that never sends its request does not keep a connection open.
    sock.setTimeout(10_000, () => !started && sock.destroy());
    readMessages(sock, (msg) => {
      if (msg.t === "answer") {
        const value = msg.interrupted === true ? INTERRUPTED : typeof msg.value === "string" ? msg.value : undefined;
        answers.shift()?.(value);
        return;
      }
      if (started) return;
      const req = parseRequest(msg);
      if (!req || !ours(req)) {
        send(sock, { t: "refused", reason: req ? "this server runs another config or data directory" : "bad request" });
        sock.end();
        return;
      }
      started = true;
      sock.setTimeout(0);
      log("info", "Running for prosodyctl: %s", describe(req.argv));
      send(sock, { t: "started" });
      // Output lines are sent together: one message (and one write on each side) per turn of the
      // event loop rather than per line (a list of 100 invites was 100 messages). Anything else sent
      // goes after the output before it, so stdout and stderr keep their order.
      let out = "";
      const flushOut = () => {
        if (out === "") return;
        const d = out;
        out = "";
        send(sock, { t: "out", d });
      };
      const post = (msg: Record<string, unknown>) => {
        flushOut();
        send(sock, msg);
      };
      heartbeat = setInterval(() => post({ t: "alive" }), HEARTBEAT_MS);
      const ask = (kind: string) =>
        new Promise<string | undefined | typeof INTERRUPTED>((answer) => {
          if (sock.destroyed) return answer(undefined);
          answers.push(answer);
          post({ t: "read", kind });
        });
      const io: ClientIO = {
        stdout: (text) => {
          if (out === "") setImmediate(flushOut);
          out += text;
          if (out.length >= OUT_BATCH_MAX) flushOut();
        },
        stderr: (text) => post({ t: "err", d: text }),
        passwordInput: { readSecret: () => ask("secret"), readChoice: () => ask("choice"), close: () => undefined },
      };
      run(req, io)
        .catch((err) => {
          io.stderr(`prosodyctl: internal error: ${err instanceof Error ? err.message : String(err)}\n`);
          return 1;
        })
        .then((code) => {
          clearInterval(heartbeat);
          post({ t: "exit", code });
          sock.end();
          finish();
        });
    });
    send(sock, { t: "hello", v: 1 });
  });
}

/** The command word (and a module command's subcommand) for the log: no JIDs, names or tokens. */
function describe(argv: string[]): string {
  const i = argv.findIndex((a, n) => !a.startsWith("-") && argv[n - 1] !== "--config");
  const command = argv[i] ?? "";
  const sub = command.startsWith("mod_") ? argv[i + 1] : undefined;
  return sub && /^[\w-]+$/.test(sub) ? `${command} ${sub}` : command;
}
