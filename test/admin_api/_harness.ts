/**
 * A host serving mod_http_admin_api on a free loopback port, API keys written straight into
 * mod_invites_api's store (`invite_api_keys`, Prosody's plaintext record plus our scopes/expires),
 * and a JSON request helper.
 */
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import { tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";

export const HOST = "example.com";

export interface Host {
  rt: Runtime;
  port: number;
  dir: string;
  /** A new key `<id>/<secret>` with these scopes (undefined: a Prosody record, create only). */
  key(scopes?: string[], extra?: Record<string, unknown>): Promise<string>;
  req(method: string, path: string, opts?: { key?: string; body?: string | Buffer; type?: string; headers?: string[] }): Promise<Reply>;
  stop(): Promise<void>;
}

export interface Reply extends RawResponse {
  json(): any;
}

let keySeq = 0;

export async function startHost(modules: string[] = [], extraConfig = ""): Promise<Host> {
  setLogLevel("error");
  const port = await freePort();
  const { dir, config } = tempConfig(`
data_path = "$DIR/data"
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
-- Every request here comes from 127.0.0.1 with few keys: the limits are tested on their own
-- (test/invites/limits-wiring.test.ts); extraConfig may turn them on again.
invites_api_rate = false
invites_api_rate_per_ip = false
register_web_rate_per_ip = false
VirtualHost "${HOST}"
modules_enabled = { "invites", "invites_api", "http_admin_api", "http"${modules.map((m) => `, "${m}"`).join("")} }
${extraConfig}
`);
  const rt = await startServer(await loadConfigFile(config), { cwd: dir });
  const keys = await rt.storage.open(HOST, "invite_api_keys", "map");
  return {
    rt,
    port,
    dir,
    async key(scopes, extra = {}) {
      const id = `k${++keySeq}`;
      const secret = `secret${keySeq}x${Math.random().toString(36).slice(2)}`;
      const record: Record<string, unknown> = { id, token: secret, name: id, created_at: Math.floor(Date.now() / 1000), ...extra };
      if (scopes) record.scopes = scopes;
      await keys.set(null, id, record as never);
      return `${id}/${secret}`;
    },
    async req(method, path, opts = {}) {
      const body = opts.body === undefined ? Buffer.alloc(0) : Buffer.from(opts.body);
      const head = [`${method} ${path} HTTP/1.1`, `Host: ${HOST}`, "Connection: close"];
      if (opts.key) head.push(`Authorization: Bearer ${opts.key}`);
      if (body.length || opts.type) head.push(`Content-Type: ${opts.type ?? "application/json"}`);
      if (body.length || method === "POST") head.push(`Content-Length: ${body.length}`);
      head.push(...(opts.headers ?? []));
      const r = await rawRequest(port, Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n"), body]), { timeoutMs: 20_000 });
      return Object.assign(r, { json: () => JSON.parse(r.body.toString("utf8")) });
    },
    stop: () => rt.stop(),
  };
}
