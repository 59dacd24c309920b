/**
 * How the running server runs prosodyctl's commands (src/cli/module-command.ts, prosodyctl.ts
 * serveCommands): on the server's storage, its drivers loaded once, while the config file still
 * says what the server loaded (else on storage of the command's own); commands running at the
 * same time keep their outputs apart; a command that throws is an error exit and the server
 * keeps serving. And prosodyctl's side (src/cli/startup.ts): a command the server runs loads
 * only the config and the socket client, not the rest of prosodyctl.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "uvu";
import net from "node:net";
import * as assert from "uvu/assert";
import { prosodyctl } from "../helpers/cli.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";

/**
 * A storage driver that counts how often its body ran in this process (once per host it is
 * loaded on) and keeps records in memory, with commands to read that count, print lines slowly
 * or around a log line, and fail.
 */
const PROBE = `
let loads = 0;
const stores = new Map();
function keyval(name) {
  if (!stores.has(name)) stores.set(name, new Map());
  const m = stores.get(name);
  return {
    type: "keyval",
    async get(user) { return m.get(user ?? ""); },
    async set(user, data) { if (data == null) m.delete(user ?? ""); else m.set(user ?? "", data); },
    async setIfAbsent(user, data) { if (m.has(user ?? "")) return false; m.set(user ?? "", data); return true; },
    async users() { return [...m.keys()]; },
  };
}
export default function (module) {
  loads++;
  module.provides("storage", { name: "probe", open: (store, type) => (type === "keyval" ? keyval(module.host + "/" + store) : undefined) });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export function command(args, ctx) {
  const [sub, host, word] = args;
  if (sub === "count") {
    return ctx.module.context(host).openStore("probe").then(() => (ctx.print("driver loads:", loads), 0));
  }
  if (sub === "slow") {
    return (async () => {
      for (let i = 1; i <= 5; i++) {
        ctx.print(word, i);
        await sleep(30);
      }
      return 0;
    })();
  }
  if (sub === "mixed") {
    ctx.print("a");
    ctx.print("b");
    ctx.module.log("warn", "between the lines");
    ctx.print("c");
    return 0;
  }
  if (sub === "throw") throw new Error("thrown before any promise");
  if (sub === "reject") return Promise.reject(new Error("rejected later"));
  ctx.print("usage: count|slow|throw|reject HOST");
  return 2;
}
`;

const CONFIG = `
plugin_paths = { "$DIR/plugins" }
storage = "probe"
VirtualHost "example.com"
modules_enabled = { "http" }
`;

const socketOf = (s: ServerProcess) => join(s.dir, "data", "prosody-ts.sock");
const ranInServer = (s: ServerProcess) => s.output().match(/Running for prosodyctl: \S+/g)?.length ?? 0;

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let server: ServerProcess;
const ctl = (...args: string[]) => prosodyctl(["--config", server.config, ...args], { cwd: server.dir });

test.before(async () => {
  server = await startServerProcess(CONFIG, {
    prepare: (dir) => {
      mkdirSync(join(dir, "plugins", "mod_storage_probe"), { recursive: true });
      writeFileSync(join(dir, "plugins", "mod_storage_probe", "mod_storage_probe.js"), PROBE);
    },
  });
  await until("the admin socket", () => existsSync(socketOf(server)));
});

test.after(async () => {
  await server?.stop();
});

test("module and account commands through the socket use the server's storage: its driver is loaded once, not per command", async () => {
  const before = ranInServer(server);
  const first = await ctl("mod_storage_probe", "count", "example.com");
  assert.equal([first.stdout, first.stderr, first.code], ["driver loads:\t1\n", "", 0], "as in prosodyctl: one load");
  const added = await prosodyctl(["--config", server.config, "adduser", "alice@example.com"], { cwd: server.dir, input: "pw\npw\n" });
  assert.is(added.code, 0, added.stderr);
  const again = await ctl("mod_storage_probe", "count", "example.com");
  assert.equal([again.stdout, again.code], ["driver loads:\t1\n", 0], "the same driver instance served the account and this command");
  assert.is(ranInServer(server) - before, 3, "all three ran in the server");
  const exists = await prosodyctl(["--config", server.config, "adduser", "alice@example.com"], { cwd: server.dir, input: "x\nx\n" });
  assert.equal([exists.stdout, exists.code], ["That user already exists\n", 1], "the account is in the server's store");
});

test("a config file edited since the server loaded it: the command opens storage of its own (the server's view is stale)", async () => {
  const original = readFileSync(server.config, "utf8");
  try {
    appendFileSync(server.config, `probe_edited = true\n`);
    const edited = await ctl("mod_storage_probe", "count", "example.com");
    assert.is(edited.code, 0, edited.stderr);
    assert.is(edited.stdout, "driver loads:\t2\n", "a runtime of its own loaded the driver again");
    writeFileSync(server.config, original);
    const back = await ctl("mod_storage_probe", "count", "example.com");
    assert.is(back.stdout, "driver loads:\t2\n", "the file says what the server runs again: its storage");
  } finally {
    writeFileSync(server.config, original);
  }
});

test("commands running at the same time through the socket keep their outputs apart", async () => {
  const words = ["alpha", "beta", "gamma"];
  const runs = await Promise.all(words.map((w) => ctl("mod_storage_probe", "slow", "example.com", w)));
  for (const [i, w] of words.entries()) {
    assert.equal([runs[i]!.stdout, runs[i]!.code], [[1, 2, 3, 4, 5].map((n) => `${w}\t${n}\n`).join(""), 0]);
  }
});

test("output lines go out together, and before a log line printed after them", async () => {
  const req = { t: "run", v: 1, argv: ["--config", server.config, "mod_storage_probe", "mixed", "example.com"], cwd: server.dir, argv0: "prosodyctl", config: server.config };
  const got = await new Promise<string>((resolve, reject) => {
    const sock = net.connect(socketOf(server));
    let text = "";
    sock.setEncoding("utf8").on("data", (d: string) => (text += d));
    sock.on("connect", () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on("error", reject);
    sock.on("close", () => resolve(text));
  });
  const msgs = got.trim().split("\n").map((l) => JSON.parse(l) as { t: string; d?: string });
  const kept = msgs.filter((m) => m.t !== "alive");
  assert.equal(kept.map((m) => m.t), ["hello", "started", "out", "err", "out", "exit"], got);
  assert.equal([kept[2]!.d, kept[4]!.d], ["a\nb\n", "c\n"]);
  assert.match(kept[3]!.d!, /warn\tbetween the lines/);
});

test("a command that throws or rejects: an error line and exit 1, and the server keeps serving", async () => {
  const thrown = await ctl("mod_storage_probe", "throw", "example.com");
  assert.equal([thrown.stdout, thrown.code], ["Failed to execute command: Error: thrown before any promise\n", 1]);
  const rejected = await ctl("mod_storage_probe", "reject", "example.com");
  assert.equal([rejected.stdout, rejected.code], ["Failed to execute command: Error: rejected later\n", 1]);
  const after = await ctl("mod_storage_probe", "count", "example.com");
  assert.is(after.code, 0, after.stderr);
  assert.is(server.child.exitCode, null, "still running");
  assert.match(server.output(), /Running for prosodyctl: mod_storage_probe reject/);
});

/**
 * Records every file the process loads: ES modules through a resolve hook (registered by
 * --import), CommonJS files and the executable's bundle through a preload (--require).
 */
function loadRecorder(dir: string): { env: NodeJS.ProcessEnv; loaded: () => string[] } {
  const log = join(dir, "loaded.txt");
  const hooks = join(dir, "record-hooks.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";\n` +
      `export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(${JSON.stringify(log)}, r.url + "\\n"); return r; }\n`,
  );
  const register = join(dir, "record.mjs");
  writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
  const preload = join(dir, "record.cjs");
  writeFileSync(
    preload,
    `const Module = require("node:module"); const { appendFileSync } = require("node:fs"); const resolve = Module._resolveFilename;\n` +
      `Module._resolveFilename = function (request, ...rest) { const f = resolve.call(this, request, ...rest); if (!Module.isBuiltin(request)) appendFileSync(${JSON.stringify(log)}, "file://" + f + "\\n"); return f; };\n` +
      // The executable compiles its bundle from the file's text (with its V8 code cache).
      `const fs = require("node:fs"); const read = fs.readFileSync;\n` +
      `fs.readFileSync = function (file, ...rest) { if (/\\.c?js$/.test(String(file))) appendFileSync(${JSON.stringify(log)}, "file://" + file + "\\n"); return read.call(this, file, ...rest); };\n`,
  );
  return {
    env: { NODE_OPTIONS: `--require ${preload} --import ${pathToFileURL(register).href}` },
    loaded: () => {
      const text = existsSync(log) ? readFileSync(log, "utf8") : "";
      writeFileSync(log, "");
      return text.split("\n").filter(Boolean);
    },
  };
}

test("prosodyctl sending a command to the server loads the config and the socket client only; without a server, the rest", async () => {
  const rec = loadRecorder(server.dir);
  const via = await prosodyctl(["--config", server.config, "mod_storage_probe", "count", "example.com"], { cwd: server.dir, env: rec.env });
  assert.is(via.code, 0, via.stderr);
  const light = rec.loaded();
  assert.ok(light.some((u) => /\/dist\/cli-fast\.cjs$/.test(u)), light.join("\n"));
  const heavy = (u: string) => /\/dist\/prosodyctl(-\w+)?\.js$|\/node_modules\/(sql\.js|fengari|pg)\//.test(u);
  assert.equal(light.filter(heavy), [], "neither prosodyctl's dispatch nor a storage engine");

  // The same config file, but its server's socket turned off: the command runs here.
  const off = join(server.dir, "off.cfg.lua");
  writeFileSync(off, `prosody_ts_admin_socket = false\n${readFileSync(server.config, "utf8")}`);
  const here = await prosodyctl(["--config", off, "mod_storage_probe", "count", "example.com"], { cwd: server.dir, env: rec.env });
  assert.equal([here.stdout, here.code], ["driver loads:\t1\n", 0], here.stderr);
  assert.ok(rec.loaded().some((u) => /\/dist\/prosodyctl(-\w+)?\.js$/.test(u)), "run here: prosodyctl's dispatch loaded");
});

test.run();
