/**
 * A syslog socket for tests: a unix datagram socket (which Node cannot bind) held by a small
 * python3 process that prints each datagram it receives as one JSON string per line.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const RECEIVER = `
import json, os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
print("ready", flush=True)
while True:
    print(json.dumps(s.recv(1 << 16).decode("utf-8", "replace")), flush=True)
`;

/** Why no test socket can be made here, or undefined. */
export function syslogSocketMissing(): string | undefined {
  return spawnSync("sh", ["-c", "command -v python3 && command -v logger"]).status === 0 ? undefined : "needs python3 (to bind a unix datagram socket) and util-linux logger";
}

export interface SyslogSocket {
  path: string;
  /** The datagrams received so far. */
  messages(): string[];
  /** Resolves once a datagram includes `text`. */
  waitFor(text: string, ms?: number): Promise<string>;
  close(): void;
}

export async function syslogSocket(): Promise<SyslogSocket> {
  const path = join(mkdtempSync(join(tmpdir(), "syslog-")), "log");
  const child = spawn("python3", ["-c", RECEIVER, path], { stdio: ["ignore", "pipe", "inherit"] });
  const received: string[] = [];
  let buffer = "";
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buffer += d;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line === "ready") ready();
      else received.push(JSON.parse(line) as string);
    }
  });
  await isReady;
  return {
    path,
    messages: () => [...received],
    async waitFor(text, ms = 10_000) {
      const until = Date.now() + ms;
      for (;;) {
        const hit = received.find((m) => m.includes(text));
        if (hit) return hit;
        if (Date.now() > until) throw new Error(`no syslog message with ${JSON.stringify(text)}; got:\n${received.join("\n")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => void child.kill(),
  };
}
