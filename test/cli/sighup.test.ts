/**
 * SIGHUP on a real `prosodyctl start` process: the config is read again and applied (modules and
 * hosts follow it, options read per use change), `config-reloaded` then `reopen-log-files` fire
 * on the global bus, a broken config is refused while the old one keeps serving, requests in
 * flight finish, a burst is serialised, and a SIGHUP during start-up does not kill the process.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { PROSODYCTL, tempConfig } from "../helpers/cli.js";
import { freePort, rawRequest } from "../helpers/http.js";
import { pluginDir } from "../helpers/plugins.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";

const PLUGINS = pluginDir({
  hello: `
    export default async function (module) {
      await module.depends("http");
      module.provides("http", { route: { "GET": () => "hello " + module.getOptionString("greeting", "nobody") } });
    }`,
  slow: `
    export default async function (module) {
      await module.depends("http");
      module.provides("http", { route: { "GET": async () => { await new Promise((r) => setTimeout(r, 1500)); return "done"; } } });
    }`,
  // Records the global events a reload fires, in order, with what they carry.
  spy: `
    import { appendFileSync } from "node:fs";
    export default function (module) {
      const file = module.getOptionString("spy_file");
      const note = (line) => appendFileSync(file, line + "\\n");
      module.hookGlobal("config-reloaded", (e) => note("config-reloaded " + e.config.get("*", "greeting")));
      module.hookGlobal("reopen-log-files", (e) => note("reopen-log-files " + JSON.stringify(e)));
    }`,
  // Slow to load: a reload that loads it takes a while.
  slowload: `
    export default async function (module) {
      await new Promise((r) => setTimeout(r, Number(module.getOption("slowload_ms", 600))));
    }`,
});

function configText(modules: string[], extra = "", hosts = ['VirtualHost "example.com"']): string {
  return [
    `plugin_paths = { ${JSON.stringify(PLUGINS)} }`,
    `http_ports = { $PORT }`,
    `spy_file = "$DIR/spy.log"`,
    extra,
    `modules_enabled = { ${modules.map((m) => JSON.stringify(m)).join(", ")} }`,
    ...hosts,
  ].join("\n");
}

/** Rewrites the server's config file (keeping the port and directory the helper chose). */
function rewrite(srv: ServerProcess, text: string): void {
  const head = `data_path = "${srv.dir}/data"\nhttp_interfaces = { "127.0.0.1" }\nrun_as_root = true\n`;
  writeFileSync(srv.config, head + text.replaceAll("$PORT", String(srv.port)).replaceAll("$DIR", srv.dir));
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

async function waitFor(srv: ServerProcess, needle: string, times = 1, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  while (count(srv.output(), needle) < times) {
    if (Date.now() > until) throw new Error(`"${needle}" not seen ${times} time(s):\n${srv.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function get(srv: ServerProcess, path: string, host = "example.com") {
  return rawRequest(srv.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, { timeoutMs: 10000 });
}

test("a module enabled in the edited config serves after SIGHUP; one removed stops; the process lives on", async () => {
  const srv = await startServerProcess(configText(["http", "slow"]));
  try {
    assert.is((await get(srv, "/hello")).status, 404);
    rewrite(srv, configText(["http", "hello"]));
    srv.child.kill("SIGHUP");
    await waitFor(srv, "Configuration reloaded");
    const hello = await get(srv, "/hello");
    assert.is(hello.status, 200);
    assert.is(hello.body.toString(), "hello nobody");
    assert.is((await get(srv, "/slow")).status, 404, "mod_slow was unloaded with its route");
    assert.match(srv.output(), "modules loaded: example.com:hello; modules unloaded: example.com:slow");
    assert.is(srv.child.exitCode, null);
  } finally {
    assert.is(await srv.stop(), 0, srv.output());
  }
});

test("options read per use change; config-reloaded ({ config }) then reopen-log-files ({}) fire on the global bus", async () => {
  const srv = await startServerProcess(configText(["http", "hello", "spy"], `greeting = "one"`));
  try {
    assert.is((await get(srv, "/hello")).body.toString(), "hello one");
    rewrite(srv, configText(["http", "hello", "spy"], `greeting = "two"`));
    srv.child.kill("SIGHUP");
    await waitFor(srv, "Configuration reloaded");
    assert.is((await get(srv, "/hello")).body.toString(), "hello two");
    assert.is(readFileSync(join(srv.dir, "spy.log"), "utf8"), "config-reloaded two\nreopen-log-files {}\n");
  } finally {
    assert.is(await srv.stop(), 0, srv.output());
  }
});

test("a broken config is refused with one error line: the old one keeps serving, log files are still reopened", async () => {
  const srv = await startServerProcess(configText(["http", "hello", "spy"], `greeting = "one"`));
  try {
    writeFileSync(srv.config, readFileSync(srv.config, "utf8").replace(`greeting = "one"`, `greeting = = "two"`));
    srv.child.kill("SIGHUP");
    await waitFor(srv, "There was an error parsing the configuration file");
    await new Promise((r) => setTimeout(r, 300)); // nothing more may follow
    const after = srv.output().slice(srv.output().indexOf("Received SIGHUP"));
    const errors = after.split("\n").filter((l) => /\berror\b/.test(l));
    assert.is(errors.length, 1, after);
    assert.match(errors[0]!, "There was an error parsing the configuration file:");
    assert.match(errors[0]!, srv.config);
    assert.not.match(after, /\n\s+at /);
    assert.is(readFileSync(join(srv.dir, "spy.log"), "utf8"), "reopen-log-files {}\n");
    assert.is((await get(srv, "/hello")).body.toString(), "hello one");
    assert.is(srv.child.exitCode, null);
  } finally {
    assert.is(await srv.stop(), 0, srv.output());
  }
});

test("a request in flight across the SIGHUP completes, even when the reload unloads its module", async () => {
  const srv = await startServerProcess(configText(["http", "slow", "hello"]));
  try {
    const inflight = get(srv, "/slow");
    await new Promise((r) => setTimeout(r, 300));
    rewrite(srv, configText(["http", "hello"]));
    srv.child.kill("SIGHUP");
    await waitFor(srv, "Configuration reloaded");
    const res = await inflight;
    assert.is(res.status, 200);
    assert.is(res.body.toString(), "done");
    assert.is((await get(srv, "/slow")).status, 404);
  } finally {
    assert.is(await srv.stop(), 0, srv.output());
  }
});

test("hosts added by the edited config are activated, hosts removed are deactivated", async () => {
  const srv = await startServerProcess(configText(["http", "hello"], "", ['VirtualHost "a.example"']));
  try {
    assert.is((await get(srv, "/hello", "a.example")).status, 200);
    rewrite(srv, configText(["http", "hello"], "", ['VirtualHost "b.example"']));
    srv.child.kill("SIGHUP");
    await waitFor(srv, "Configuration reloaded");
    assert.match(srv.output(), "Configuration reloaded: hosts activated: b.example; hosts deactivated: a.example");
    assert.is((await get(srv, "/hello", "b.example")).body.toString(), "hello nobody");
    assert.match(srv.output(), "Deactivated host: a.example");
  } finally {
    assert.is(await srv.stop(), 0, srv.output());
  }
});

test("a burst of SIGHUPs runs one reload at a time and coalesces the rest into one more", async () => {
  const srv = await startServerProcess(configText(["http", "hello"]));
  try {
    // Each reload loads (then unloads) mod_slowload, which takes 600 ms: the burst lands inside the first.
    rewrite(srv, configText(["http", "hello", "slowload"]));
    srv.child.kill("SIGHUP");
    await waitFor(srv, "Reloading configuration file");
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 60));
      srv.child.kill("SIGHUP");
    }
    await waitFor(srv, "Received SIGHUP", 5);
    await waitFor(srv, "Configuration reloaded", 2);
    await new Promise((r) => setTimeout(r, 1000));
    const out = srv.output();
    assert.is(count(out, "Reloading configuration file"), 2, out);
    const order = out.split("\n").filter((l) => /Reloading configuration file|Configuration reloaded/.test(l)).map((l) => (/Reloading/.test(l) ? "start" : "end"));
    assert.equal(order, ["start", "end", "start", "end"]);
    assert.is((await get(srv, "/hello")).status, 200);
  } finally {
    assert.is(await srv.stop(), 0, srv.output());
  }
});

test("a SIGHUP during start-up does not kill the server: it reloads once started", async () => {
  const port = await freePort();
  const { dir, config } = tempConfig(`data_path = "$DIR/data"\nhttp_interfaces = { "127.0.0.1" }\n` + configText(["http", "hello", "slowload"], "slowload_ms = 1500").replaceAll("$PORT", String(port)));
  const child = spawn(process.execPath, [PROSODYCTL, "--config", config, "start"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise((r) => child.on("exit", (code, signal) => r(code ?? signal)));
  try {
    const until = Date.now() + 15000;
    while (!out.includes("Prosody-compatible host starting") && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    child.kill("SIGHUP"); // mod_slowload is still loading
    const srv = { port, dir, config, output: () => out, child } as unknown as ServerProcess;
    await waitFor(srv, "Configuration reloaded");
    assert.ok(out.indexOf("Received SIGHUP") < out.indexOf("Activated host: example.com"), out);
    assert.ok(out.indexOf("Activated host: example.com") < out.indexOf("Reloading configuration file"), out);
    assert.is((await get(srv, "/hello")).status, 200);
    assert.is(child.exitCode, null);
  } finally {
    child.kill("SIGTERM");
    assert.is(await exited, 0, out);
  }
});

test.run();
