/** A real server (internal storage) with the Snikket modules, a recorder plugin, and JSON requests. */
import { loadConfigFile } from "../../src/core/config/index.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { Runtime } from "../../src/core/runtime.js";
import { startServer } from "../../src/server.js";
import type { InvitesApi } from "../../plugins/mod_invites/invites.js";
import { tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest, type RawResponse } from "../helpers/http.js";
import { pluginDir } from "../helpers/plugins.js";

/**
 * mod_test_recorder: keeps every registration event it sees (a copy) in its exports, and refuses
 * (user-registering) the username "vetoed", throws from group-user-added for the group "explodes";
 * `fire(name, data)` fires an event on its host as a
 * registering module would (fireEventAsync).
 */
const RECORDER = `
export default function (module) {
  const events = (module.exports.events = []);
  module.exports.fire = (name, data) => module.fireEventAsync(name, data);
  for (const name of ["user-registering", "user-registered", "user-password-reset", "group-user-added"]) {
    module.hook(name, (event) => {
      events.push({ name, event: typeof event === "object" && event ? { ...event } : event });
      if (name === "group-user-added" && event.id === "explodes") throw new Error("a group-user-added handler failed");
      if (name === "user-registering" && event.username === "vetoed") {
        event.allowed = false;
        event.reason = "not this one";
      }
      return undefined;
    }, -10);
  }
}
`;

export interface Recorded {
  name: string;
  event: any;
}

export interface TestServer {
  rt: Runtime;
  port: number;
  dir: string;
  exports<T = any>(host: string, name: string): T;
  invites(host?: string): InvitesApi;
  events(host?: string): Recorded[];
  fire(host: string, name: string, data: object): Promise<unknown>;
  request(method: string, target: string, opts?: { body?: string | Buffer; type?: string | null; host?: string; headers?: Record<string, string> }): Promise<RawResponse>;
  stop(): Promise<void>;
}

/** Starts a server; `$PORT`, `$DIR` and `$PLUGINS` in `body` (after the global part) are replaced. */
export async function startTestServer(body: string): Promise<TestServer> {
  setLogLevel("error");
  const port = await freePort();
  const plugins = pluginDir({ test_recorder: RECORDER });
  const { dir, config } = tempConfig(`
run_as_root = true
data_path = "$DIR/data"
plugin_paths = { ${JSON.stringify(plugins)} }
http_ports = { ${port} }
http_interfaces = { "127.0.0.1" }
-- Every request here comes from 127.0.0.1: the per-address limits are tested on their own
-- (test/invites/limits-wiring.test.ts).
register_api_rate_per_ip = false
invites_bootstrap_rate_per_ip = false
register_web_rate_per_ip = false
${body.replaceAll("$PORT", String(port))}`);
  const rt = await startServer(await loadConfigFile(config), { cwd: dir });
  const exportsOf = (host: string, name: string) => {
    const mod = rt.modules.get(host, name);
    if (!mod) throw new Error(`mod_${name} is not loaded on ${host}`);
    return mod.exports as any;
  };
  return {
    rt,
    port,
    dir,
    exports: exportsOf,
    invites: (host = "example.com") => exportsOf(host, "invites"),
    events: (host = "example.com") => exportsOf(host, "test_recorder").events,
    fire: (host, name, data) => exportsOf(host, "test_recorder").fire(name, data),
    request(method, target, opts = {}) {
      const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
      const head = [`${method} ${target} HTTP/1.1`, `Host: ${opts.host ?? "example.com"}`, "Connection: close"];
      if (body) head.push(`Content-Length: ${body.length}`);
      const type = opts.type === undefined ? "application/json" : opts.type;
      if (body && type !== null) head.push(`Content-Type: ${type}`);
      for (const [k, v] of Object.entries(opts.headers ?? {})) head.push(`${k}: ${v}`);
      const raw = Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n"), body ?? Buffer.alloc(0)]);
      return rawRequest(port, raw, { head: method === "HEAD", timeoutMs: 20_000 });
    },
    stop: () => rt.stop(),
  };
}

export const jsonOf = (r: RawResponse): any => JSON.parse(r.body.toString("utf8"));
