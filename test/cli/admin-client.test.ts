/**
 * prosodyctl's side of the admin socket (src/cli/admin-client.ts), against a stand-in server: the
 * command line is sent as soon as the socket is open, without waiting for the greeting (one
 * exchange less per command), and carries the protocol version.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import net from "node:net";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { prosodyctl, tempConfig } from "../helpers/cli.js";

test("the run request goes out before the greeting, with its version", async () => {
  const { dir, config } = tempConfig(`data_path = "$DIR/data"\nVirtualHost "example.com"\nmodules_enabled = { "invites" }\n`);
  mkdirSync(join(dir, "data"));
  const requests: Array<Record<string, unknown>> = [];
  // Greets only once it has the request: a client that waits for the greeting first gets nothing
  // and, after its wait, runs the command itself (which prints an invite link instead).
  const server = net.createServer((sock) => {
    let buf = "";
    sock.setEncoding("utf8").on("data", (chunk: string) => {
      buf += chunk;
      if (!buf.includes("\n")) return;
      requests.push(JSON.parse(buf.slice(0, buf.indexOf("\n"))) as Record<string, unknown>);
      for (const msg of [{ t: "hello", v: 1 }, { t: "started" }, { t: "out", d: "from the stand-in\n" }, { t: "exit", code: 3 }]) sock.write(`${JSON.stringify(msg)}\n`);
      sock.end();
    });
  });
  await new Promise<void>((ok) => server.listen(join(dir, "data", "prosody-ts.sock"), ok));
  try {
    const r = await prosodyctl(["--config", config, "mod_invites", "generate", "example.com"], { cwd: dir });
    assert.equal([r.stdout, r.stderr, r.code], ["from the stand-in\n", "", 3]);
    assert.is(requests.length, 1);
    assert.equal([requests[0]!.t, requests[0]!.v, requests[0]!.argv], ["run", 1, ["--config", config, "mod_invites", "generate", "example.com"]]);
  } finally {
    server.close();
  }
});

test.run();
