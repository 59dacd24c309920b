/**
 * The plugin contract from a plugin that lives outside this repo (issue 12): plain JavaScript in a
 * `plugin_paths` folder, one plugin with its own package.json and the others without, run by the
 * built prosodyctl (server and commands) with nothing installed for them. They import "prosody-ts"
 * and "prosody-ts/util", serve a route, veto a registration after an awaited lookup
 * (fireEventAsync), and provide CLI commands without running their body on "*". Run after
 * `npm run build`.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { prosodyctl } from "../helpers/cli.js";
import { rawRequest, type RawResponse } from "../helpers/http.js";
import { startServerProcess, type ServerProcess } from "../helpers/server-process.js";

/** The README's "Writing plugins" example, read from README.md so the two cannot drift apart. */
const README_EXAMPLE = (() => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Writing plugins"));
  const block = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block || !block.includes("mod_hello")) throw new Error("README.md: no js example under \"Writing plugins\"");
  return block;
})();

/** Its own package.json ("type": "module", "prosody-ts" listed but not installed). */
const WITH_PACKAGE = `
import { REMOVE } from "prosody-ts";
import { id } from "prosody-ts/util";

export default function (module) {
  // Never reached by "prosodyctl mod_ext_pkg": this body is the per-host service.
  if (module.host === "*") throw new Error("the body ran on *");
  module.exports.loaded = true;
}

export function command(args, ctx) {
  ctx.print(["pkg", typeof REMOVE, id.short().length, ...args].join(" "));
  return 0;
}
`;

/** Only a command: a CLI-only module (.mjs, no package.json). */
const CLI_ONLY = `
import { nodeprep } from "prosody-ts/util";
export const command = (args, ctx) => (ctx.print("cli-only " + args.map((a) => nodeprep(a)).join(" ")), 0);
`;

/** Provides routes without depends("http"). */
const NO_HTTP = `
export default function (module) {
  module.provides("http", { route: { GET: () => "never served" } });
}
`;

function pluginFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-external-"));
  const put = (path: string, text: string) => {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  };
  put("mod_hello/mod_hello.js", README_EXAMPLE);
  put("mod_ext_pkg/package.json", JSON.stringify({ name: "mod_ext_pkg", private: true, type: "module", dependencies: { "prosody-ts": "*" } }));
  put("mod_ext_pkg/mod_ext_pkg.js", WITH_PACKAGE);
  // An installed copy of its own is not used: every plugin gets the running host's API.
  put("mod_ext_pkg/node_modules/prosody-ts/package.json", JSON.stringify({ name: "prosody-ts", type: "module", exports: { ".": "./index.js", "./util": "./util.js" } }));
  put("mod_ext_pkg/node_modules/prosody-ts/index.js", `export const REMOVE = "a stale copy";`);
  put("mod_ext_pkg/node_modules/prosody-ts/util.js", `export const id = { short: () => "stale" };`);
  put("mod_ext_cli/mod_ext_cli.mjs", CLI_ONLY);
  put("mod_ext_nohttp/mod_ext_nohttp.js", NO_HTTP);
  return dir;
}

const PLUGINS = pluginFolder();
let server: ServerProcess;

function get(path: string, host = "example.com"): Promise<RawResponse> {
  return rawRequest(server.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
}

function postForm(path: string, fields: Record<string, string>): Promise<RawResponse> {
  const body = new URLSearchParams(fields).toString();
  return rawRequest(
    server.port,
    `POST ${path} HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

const ctl = (...args: string[]) => prosodyctl(["--config", server.config, ...args], { cwd: server.dir });

test.before(async () => {
  server = await startServerProcess(`
plugin_paths = { ${JSON.stringify(PLUGINS)} }
modules_enabled = { "ext_nohttp" }
VirtualHost "example.com"
  modules_enabled = { "hello", "ext_pkg", "invites", "invites_register", "invites_register_web" }
VirtualHost "other.example"
`);
});

test.after(async () => {
  await server?.stop();
});

test("the README example serves its route; its command runs in prosodyctl without its body", async () => {
  assert.equal(server.output().match(/Failed to load|not found/g), null, server.output());
  const saved = await ctl("mod_hello", "example.com", "bob", "Hello", "Bob");
  assert.equal([saved.stdout, saved.code], ["saved\n", 0]);
  const hello = await get("/hello/bob");
  assert.is(hello.status, 200);
  assert.is(hello.body.toString(), "Hello Bob");
  assert.is(hello.header("cache-control"), "no-store", "headers from prosody-ts/util");
  assert.is((await get("/hello/nobody")).status, 404);
});

test("a user-registering handler of an outside plugin refuses a registration after an awaited lookup", async () => {
  const generated = await ctl("mod_invites", "generate", "example.com");
  assert.is(generated.code, 0);
  const token = /preauth=([\w-]+)/.exec(generated.stdout)?.[1];
  assert.ok(token, generated.stdout);
  await ctl("mod_hello", "example.com", "mallory", "reserved");
  const refused = await postForm("/register", { user: "mallory", password: "goodpassword1", token: token! });
  assert.is(refused.status, 200);
  assert.match(refused.body.toString(), "This name is reserved.");
  const accepted = await postForm("/register", { user: "carol", password: "goodpassword1", token: token! });
  assert.match(accepted.body.toString(), "Congratulations!");
});

test("a plugin with its own package.json (and a stale copy installed) and a CLI-only .mjs plugin get the host's prosody-ts", async () => {
  const pkg = await ctl("mod_ext_pkg", "x", "y");
  assert.equal([pkg.stdout, pkg.code], ["pkg symbol 12 x y\n", 0], pkg.stderr);
  const cli = await ctl("mod_ext_cli", "ÄBC", "def");
  assert.equal([cli.stdout, cli.code], ["cli-only äbc def\n", 0], cli.stderr);
  // Nothing but the admin socket's line for the command it ran (src/cli/admin-socket.ts).
  const said = server.output().replace(/^.*Running for prosodyctl: mod_ext_\w+.*$/gm, "");
  assert.not.match(said, "mod_ext_pkg", "loaded on example.com without a word");
});

test("routes provided where mod_http is not loaded are reported, naming the host", async () => {
  const out = server.output();
  assert.match(out, /other\.example:ext_nohttp\s+warn\s+module\.provides\("http", …\) has no effect: mod_http is not loaded on other\.example \(add `await module\.depends\("http"\)`/);
  assert.not.match(out, /example\.com:ext_nohttp\s+warn/, "served on example.com (mod_http is there)");
});

test.run();
