/**
 * The admin socket's protocol and where the socket is (see admin-socket.ts for the server side,
 * admin-client.ts for prosodyctl's): kept apart and small, so a prosodyctl that only sends its
 * command to the server loads little more than this.
 */
import type net from "node:net";
import { realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Config } from "../core/config/index.js";
import { dataDirOf } from "../core/data-dir.js";

export const ADMIN_SOCKET_NAME = "prosody-ts.sock";
export const ADMIN_SOCKET_OPTION = "prosody_ts_admin_socket";
/** How often a server running a command says it is still there. */
export const HEARTBEAT_MS = 2000;
/** Longest line either side accepts. */
const MAX_LINE = 4 * 1024 * 1024;

/** What prosodyctl asks the server to run. */
export interface RunRequest {
  argv: string[];
  cwd: string;
  argv0: string;
  command?: string;
  /** The config file prosodyctl found (realpath), or null for the embedded config. */
  config: string | null;
  /** prosodyctl's terminal width (CliIO.width). */
  width?: number;
}

/** The socket's path for a config, or undefined when the config turns it off. */
export function adminSocketPath(config: Config, cwd: string): string | undefined {
  const opt = config.get("*", ADMIN_SOCKET_OPTION);
  if (opt === false) return undefined;
  const dataDir = dataDirOf(config, cwd);
  return typeof opt === "string" && opt !== "" ? resolve(dataDir, opt) : join(dataDir, ADMIN_SOCKET_NAME);
}

/** Which config this is, as client and server compare it: the file's real path, null if embedded. */
export function configIdentity(config: Config, cwd: string): string | null {
  if (!config.file) return null;
  const file = resolve(cwd, config.file);
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/** Calls `onMessage` with each JSON object the peer sends; a line that is not one ends the connection. */
export function readMessages(sock: net.Socket, onMessage: (msg: Record<string, unknown>) => void): void {
  let buf = "";
  sock.setEncoding("utf8");
  sock.on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        msg = undefined;
      }
      if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
        sock.destroy();
        return;
      }
      onMessage(msg as Record<string, unknown>);
      if (sock.destroyed) return;
    }
    if (buf.length > MAX_LINE) sock.destroy();
  });
}

export function send(sock: net.Socket, msg: Record<string, unknown>): void {
  if (!sock.destroyed && sock.writable) sock.write(`${JSON.stringify(msg)}\n`);
}
