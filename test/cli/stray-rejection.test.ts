/**
 * A promise a module forgot to handle does not end the server (Node's default for an unhandled
 * rejection): it is logged at error level with its stack, and the server goes on serving.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rawRequest } from "../helpers/http.js";
import { pluginDir } from "../helpers/plugins.js";
import { startServerProcess } from "../helpers/server-process.js";

const PLUGINS = pluginDir({
  careless: `
    export default async function (module) {
      await module.depends("http");
      module.provides("http", { route: {
        "GET": () => {
          // Fire and forget, as a buggy module might: nobody handles this rejection.
          void Promise.resolve().then(() => { throw new Error("forgotten failure"); });
          return "ok";
        },
      } });
    }`,
});

test("an unhandled rejection in a module is logged; the server keeps serving", async () => {
  const server = await startServerProcess(`plugin_paths = { ${JSON.stringify(PLUGINS)} }\nVirtualHost "example.com"\nmodules_enabled = { "http", "careless" }\n`);
  try {
    const get = () => rawRequest(server.port, "GET /careless HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
    assert.is((await get()).status, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.is((await get()).status, 200, "still serving after the first rejection");
    assert.match(server.output(), /error\s+Unhandled promise rejection \(a bug in a module; the server goes on\): Error: forgotten failure/);
    assert.is(await server.stop(), 0, "a clean stop afterwards");
  } finally {
    await server.stop();
  }
});

test.run();
