/**
 * prosodyctl's side of the admin socket (src/cli/admin-socket.ts): runs a command in the server
 * that serves this config. Undefined means "run it here": no server, a socket we may not use
 * (refused, permissions, stale, not ours), or a server that declined before running anything.
 * Once the server runs the command, its output and exit code are ours; a server that goes away
 * or stops answering mid-command is one line on stderr and exit 1, never a hang.
 */
import net from "node:net";
import type { Config } from "../core/config/index.js";
import { HEARTBEAT_MS, adminSocketPath, configIdentity, readMessages, send, type RunRequest } from "./admin-protocol.js";
import { INTERRUPTED, type CliIO, type PasswordInput } from "./io.js";

/** How long a server has to greet us before we run the command ourselves. */
const HELLO_MS = 2000;
/** Silence (no output, no heartbeat) after which the server counts as gone. */
const SILENCE_MS = 5 * HEARTBEAT_MS;

export async function runInServer(argv: string[], config: Config, io: CliIO): Promise<number | undefined> {
  const path = adminSocketPath(config, io.cwd);
  if (!path) return undefined;
  const req: RunRequest = { argv, cwd: io.cwd, argv0: io.argv0, command: io.command, config: configIdentity(config, io.cwd), width: io.width };
  return new Promise((done) => {
    let state: "connecting" | "sent" | "running" | "over" = "connecting";
    let input: PasswordInput | undefined;
    let reading = false;
    let timer: NodeJS.Timeout | undefined;
    const sock = net.connect(path);
    const finish = (code: number | undefined) => {
      if (state === "over") return;
      state = "over";
      clearTimeout(timer);
      input?.close();
      sock.destroy();
      done(code);
    };
    const gone = (what: string) => {
      if (state === "over") return;
      io.stderr(`prosodyctl: the server ${what} while running this command (admin socket ${path}); it may or may not have taken effect\n`);
      finish(1);
    };
    // Before the greeting: run it here. After: wait for the server as long as it says it is alive.
    const watch = () => {
      clearTimeout(timer);
      if (reading) return;
      timer = setTimeout(() => (state === "connecting" ? finish(undefined) : gone("stopped answering")), state === "connecting" ? HELLO_MS : SILENCE_MS);
    };
    watch();
    // Sent at once, not after the greeting: one exchange less. The server reads it after greeting;
    // a server that cannot take it answers "refused", and the command then runs here.
    send(sock, { t: "run", v: 1, ...req });
    sock.on("error", () => (state === "connecting" || state === "sent" ? finish(undefined) : gone("went away")));
    sock.on("close", () => (state === "connecting" || state === "sent" ? finish(undefined) : gone("stopped")));
    readMessages(sock, (msg) => {
      if (state === "over") return;
      if (state === "connecting") {
        if (msg.t !== "hello" || msg.v !== 1) return finish(undefined);
        state = "sent";
        return watch();
      }
      if (msg.t === "refused") return finish(state === "sent" ? undefined : 1);
      state = "running";
      watch();
      if (msg.t === "started" || msg.t === "alive") return;
      if (msg.t === "out" && typeof msg.d === "string") io.stdout(msg.d);
      else if (msg.t === "err" && typeof msg.d === "string") io.stderr(msg.d);
      else if (msg.t === "exit") finish(typeof msg.code === "number" ? msg.code : 1);
      else if (msg.t === "read") {
        reading = true;
        clearTimeout(timer);
        const kind = msg.kind;
        // Loaded only when a command asks for a password (most never do).
        const opened = input ?? io.passwordInput ?? import("./password-input.js").then(({ openPasswordInput }) => openPasswordInput(process.stdin));
        void Promise.resolve(opened).then((inp): Promise<string | undefined | typeof INTERRUPTED> => {
          input = inp;
          if (sock.destroyed) {
            inp.close();
            return Promise.resolve(undefined);
          }
          return kind === "choice" ? inp.readChoice() : inp.readSecret();
        }).then((value) => {
          reading = false;
          send(sock, value === INTERRUPTED ? { t: "answer", interrupted: true } : { t: "answer", value: value ?? null });
          watch();
        });
      }
    });
  });
}
