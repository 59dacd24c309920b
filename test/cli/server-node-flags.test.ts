/**
 * The Node options the server runs with (SERVER_NODE_FLAGS, src/cli/daemon.ts) are the same
 * wherever this project starts it: `prosodyctl restart`, `prosodyctl start` typed by hand (the
 * executable's first line), `npm start`, the README's systemd unit, and the benches that measure it.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SERVER_NODE_FLAGS, detachedStartArgs } from "../../src/cli/daemon.js";
import { loadConfigString } from "../../src/core/config/index.js";

const ROOT = resolve(import.meta.dirname, "../..");

test("prosodyctl restart starts the server with them, before the executable", async () => {
  const config = await loadConfigString('VirtualHost "example.com"\n', "/etc/prosody-ts/prosody-ts.cfg.lua");
  const args = detachedStartArgs(config, true);
  assert.equal(args.slice(0, SERVER_NODE_FLAGS.length), [...SERVER_NODE_FLAGS]);
  assert.ok(args[SERVER_NODE_FLAGS.length]!.endsWith("/prosodyctl-shim/prosodyctl"), args.join(" "));
  assert.equal(args.slice(-2), ["--root", "start"]);
});

test("the executable's first line runs node with them, in a line older kernels read whole", () => {
  const first = readFileSync(join(ROOT, "prosodyctl-shim", "prosodyctl"), "utf8").split("\n")[0]!;
  assert.ok(Buffer.byteLength(first) < 128, `${Buffer.byteLength(first)} bytes: ${first}`);
  assert.ok(first.startsWith("#!/usr/bin/env -S "), first);
  const words = first.slice("#!/usr/bin/env -S ".length).split(" ");
  assert.equal(words.slice(words.indexOf("node") + 1), [...SERVER_NODE_FLAGS]);
});

test("npm start runs node with the server's options", () => {
  const start = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts.start!;
  assert.is(start, `node ${SERVER_NODE_FLAGS.join(" ")} scripts/start.mjs`);
});

test("the README's systemd unit runs node with them", () => {
  const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n").filter((l) => l.startsWith("ExecStart=/usr/bin/node "));
  assert.is(lines.length, 1, "one ExecStart line in the README's unit");
  assert.ok(lines[0]!.startsWith(`ExecStart=/usr/bin/node ${SERVER_NODE_FLAGS.join(" ")} /`), lines[0]);
});

test("the benches start our server with them", async () => {
  const { SERVER_NODE_ARGS } = (await import(pathToFileURL(join(ROOT, "bench", "_common.mjs")).href)) as { SERVER_NODE_ARGS: string[] };
  assert.equal(SERVER_NODE_ARGS, [...SERVER_NODE_FLAGS]);
});

test.run();
