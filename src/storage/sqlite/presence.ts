/**
 * Which of our processes have a database open, so the last one to close it can fold the journal
 * into the SQLite file (leaving a file a real Prosody or sqlite3 reads completely).
 *
 * Each opener announces itself with a listening unix socket `o.<digest of the file name>.<pid>.<random>`
 * in the lock directory beside the database (lock-dir.ts: only processes that may write that
 * directory can create one, so nobody else can fake "still open"). The kernel closes the socket
 * when the process exits, even on kill -9; its entry then refuses connections and is removed by
 * whoever finds it. Where the lock directory cannot be used, `announce()` gives undefined (and the
 * caller folds nothing: the safe, cheap choice).
 */
import path from "node:path";
import type net from "node:net";
import { LockDir, keyDigest, randomName } from "./lock-dir.js";

export class Presence {
  private constructor(
    private readonly dir: LockDir,
    private readonly server: net.Server,
    private readonly prefix: string,
    private readonly own: string,
  ) {}

  static async announce(file: string): Promise<Presence | undefined> {
    const abs = path.resolve(file);
    const prefix = `o.${keyDigest(path.basename(abs))}.`;
    try {
      const dir = LockDir.of(path.dirname(abs));
      const { server, name } = await dir.publish(
        () => `${prefix}${process.pid}.${randomName()}`,
        (c) => c.destroy(),
      );
      server.unref();
      return new Presence(dir, server, prefix, name);
    } catch {
      return undefined;
    }
  }

  /** Whether another process (or another open in this one) still has the database open. */
  async othersOpen(): Promise<boolean> {
    let names: string[];
    try {
      names = this.dir.list();
    } catch {
      return true;
    }
    for (const name of names) {
      if (!name.startsWith(this.prefix) || name === this.own) continue;
      let state = "closing";
      try {
        // "closing": it closed as we connected; a second look tells whether it is gone or dead.
        for (let tries = 0; state === "closing" && tries < 3; tries++) {
          const probe = await this.dir.probe(name);
          if (probe.state === "live") probe.sock.destroy();
          state = probe.state;
        }
      } catch {
        return true; // cannot tell: assume open
      }
      if (state === "dead") this.dir.unlink(name);
      else if (state !== "gone") return true;
    }
    return false;
  }

  close(): void {
    this.dir.unlink(this.own);
    this.server.close();
  }
}
