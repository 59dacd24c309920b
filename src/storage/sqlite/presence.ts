/**
 * Which of our processes have a database open, so the last one to close it can fold the journal
 * into the SQLite file (leaving a file a real Prosody or sqlite3 reads completely).
 *
 * Each process announces itself by listening on an abstract unix socket
 * "\0prosody-ts-open:<sha256(realpath)>:<pid>:<random>"; the kernel drops the name when the process
 * exits, even on kill -9. Linux lists abstract names in /proc/net/unix (prefixed with "@"), which is
 * how a closing process sees whether others remain. Where that file can't be read, `othersOpen()`
 * answers true (fold nothing: the safe, cheap choice).
 */
import crypto from "node:crypto";
import { readFileSync, realpathSync } from "node:fs";
import net from "node:net";

export class Presence {
  private constructor(
    private readonly server: net.Server,
    private readonly prefix: string,
    private readonly own: string,
  ) {}

  static async announce(file: string): Promise<Presence | undefined> {
    let real = file;
    try {
      real = realpathSync(file);
    } catch {
      // not created yet: the path as given
    }
    const prefix = `prosody-ts-open:${crypto.createHash("sha256").update(real).digest("hex")}:`;
    const own = `${prefix}${process.pid}:${crypto.randomBytes(6).toString("hex")}`;
    const server = net.createServer((c) => c.destroy());
    const ok = await new Promise<boolean>((res) => {
      server.once("error", () => res(false));
      server.listen(`\0${own}`, () => res(true));
    });
    if (!ok) return undefined;
    server.unref();
    return new Presence(server, prefix, own);
  }

  /**
   * Whether another process (or another open in this one) still has the database open. Async by
   * the agreed interface (an implementation may have to ask the kernel or other processes).
   */
  async othersOpen(): Promise<boolean> {
    let table: string;
    try {
      table = readFileSync("/proc/net/unix", "latin1");
    } catch {
      return true;
    }
    for (const line of table.split("\n")) {
      const at = line.indexOf(`@${this.prefix}`);
      // Node pads abstract names with NULs, which the kernel shows as "@".
      if (at >= 0 && line.slice(at + 1).replace(/@+$/, "") !== this.own) return true;
    }
    return false;
  }

  close(): void {
    this.server.close();
  }
}
