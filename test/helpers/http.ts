/** Raw HTTP over a socket, for exact wire comparisons. */
import { createServer, Socket } from "node:net";

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface RawResponse {
  statusLine: string;
  status: number;
  headers: Array<[string, string]>;
  header(name: string): string | undefined;
  body: Buffer;
}

/** Sends `raw` and reads one response (the body by Content-Length; none for HEAD). */
export function rawRequest(port: number, raw: string | Buffer, opts: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolveRes, reject) => {
    const sock = new Socket();
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete response within ${opts.timeoutMs ?? 5000} ms; got ${JSON.stringify(buf.toString("latin1").slice(0, 200))}`));
    }, opts.timeoutMs ?? 5000);
    const tryParse = (final: boolean) => {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) return final ? fail("connection closed before the headers ended") : undefined;
      const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
      const headers: Array<[string, string]> = [];
      for (const l of lines.slice(1)) {
        const i = l.indexOf(":");
        headers.push([l.slice(0, i), l.slice(i + 1).trim()]);
      }
      const header = (n: string) => headers.find(([k]) => k.toLowerCase() === n.toLowerCase())?.[1];
      const len = header("content-length");
      const bodyStart = end + 4;
      let body: Buffer;
      if (opts.head) body = Buffer.alloc(0);
      else if (len !== undefined) {
        if (buf.length < bodyStart + Number(len)) return final ? fail("connection closed mid-body") : undefined;
        body = buf.subarray(bodyStart, bodyStart + Number(len));
      } else if (!final) return undefined;
      else body = buf.subarray(bodyStart);
      clearTimeout(timer);
      sock.destroy();
      resolveRes({ statusLine: lines[0]!, status: Number(lines[0]!.split(" ")[1]), headers, header, body });
      return true;
    };
    const fail = (why: string) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new Error(why));
      return true;
    };
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      tryParse(false);
    });
    sock.on("end", () => tryParse(true));
    sock.on("error", (e) => fail(e.message));
    sock.connect(port, "127.0.0.1", () => sock.write(raw));
  });
}

/**
 * Resolves once something answers HTTP on 127.0.0.1:`port`; rejects after `ms` with an error
 * naming `what` and ending with `details()` (e.g. the tail of its log), so a server that never came
 * up says why.
 */
export async function waitForHttp(port: number, what: string, details: () => string = () => "", ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      await rawRequest(port, "GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n", { timeoutMs: 500 });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not listen on ${port}\n${details()}`);
}
