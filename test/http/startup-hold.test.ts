/**
 * A request that reaches the port while the server is still loading its modules waits for the
 * startup to finish, instead of meeting a route that is about to exist (404).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createRuntime } from "../../src/create-runtime.js";
import { makeConfig } from "../helpers/config.js";
import { pluginDir } from "../helpers/plugins.js";
import { raw } from "./_helpers.js";

const PLUGINS = pluginDir({
  slowapp: `
    export default async function (module) {
      await module.depends("http");
      await globalThis.__slowappRelease; // still loading when the port is already open
      module.provides("http", { route: { "GET": () => "slow app ready" } });
    }`,
});

test("requests during startup are answered once every module is loaded", async () => {
  let release!: () => void;
  (globalThis as Record<string, unknown>).__slowappRelease = new Promise<void>((r) => (release = r));
  const rt = createRuntime({
    config: makeConfig(
      { plugin_paths: [PLUGINS], storage: "memory", http_ports: [0], http_interfaces: ["127.0.0.1"], modules_enabled: ["http", "slowapp"] },
      { "a.example": {} },
    ),
    processType: "server",
  });
  const started = rt.start();
  try {
    const state = rt.shared("/*/http/server") as { listening?: Array<{ port: number }> };
    for (let i = 0; i < 200 && !state.listening?.length; i++) await new Promise((r) => setTimeout(r, 10));
    const port = state.listening![0]!.port;
    const reply = raw(port, "GET /slowapp HTTP/1.1\r\nHost: a.example\r\n\r\n", { timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 200));
    release();
    await started;
    const { responses } = await reply;
    assert.is(responses[0]?.statusCode, 200);
    assert.is(responses[0]?.body.toString(), "slow app ready");
    // Once started, nothing is held.
    const again = await raw(port, "GET /slowapp HTTP/1.1\r\nHost: a.example\r\n\r\n");
    assert.is(again.responses[0]?.statusCode, 200);
  } finally {
    release();
    await rt.stop();
  }
});

test.run();
