/**
 * Issue 11 item 5: started as root, prosodyctl (and so the server) refuses a config, an Include,
 * a plugin folder or a plugin that someone other than root / prosody_user could have written,
 * before any plugin code runs; and it refuses to stay root when prosody_user does not exist,
 * unless told to (--root, run_as_root = true). Real processes, as root.
 */
import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { PROSODYCTL, prosodyctl } from "../helpers/cli.js";
import { freePort } from "../helpers/http.js";
import { skipIf } from "../helpers/skip.js";

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const NOGROUP = 65534;
function prosodyIds(): { uid: number; gid: number } | undefined {
  try {
    const text = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("prosody:"));
    if (!text) return undefined;
    const f = text.split(":");
    return { uid: Number(f[2]), gid: Number(f[3]) };
  } catch {
    return undefined;
  }
}
const prosody = prosodyIds();
const NEEDS_ROOT = "root-trust tests need root (they check what a root-started prosodyctl refuses)";
const rootTest = skipIf(test, !isRoot && NEEDS_ROOT);
const prosodyTest = skipIf(test, !isRoot ? NEEDS_ROOT : !prosody && "tests that switch to the prosody user need a 'prosody' user (install the prosody package)");

/** Markers land here, a directory anyone may write (it is on no path the host loads from). */
const MARKERS = mkdtempSync(join(tmpdir(), "prosody-ts-markers-"));
chmodSync(MARKERS, 0o777);
let seq = 0;

/**
 * A plugin folder holding mod_evil: importing it, loading it on a host and running its command
 * each write a marker file containing the uid it ran as. The command is set in the body (Lua
 * style), so that a prosodyctl command runs the body too (an exported `command` would skip it).
 */
function evilPlugins(parent: string, name = "plugins"): { dir: string; marker: string } {
  const dir = join(parent, name);
  const marker = join(MARKERS, `ran-${process.pid}-${++seq}`);
  mkdirSync(join(dir, "mod_evil"), { recursive: true });
  writeFileSync(
    join(dir, "mod_evil", "mod_evil.js"),
    `import { appendFileSync } from "node:fs";
     const mark = (what) => appendFileSync(${JSON.stringify(marker)}, what + " " + process.getuid() + "\\n");
     mark("import");
     export default function (module) {
       mark("load");
       module.command = () => { mark("command"); return 0; };
     }
    `,
  );
  return { dir, marker };
}

/** A 0700 root directory (safe to hold trusted files), optionally inside `parent`. */
function safeDir(parent = tmpdir()): string {
  return mkdtempSync(join(parent, "prosody-ts-trust-"));
}

function cfg(body: string): string {
  return `data_path = "data"\n${body.includes("http_ports") ? "" : "http_ports = {}\n"}${body}\nVirtualHost "example.com"\n`;
}

async function startRefused(args: string[], cwd: string): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [PROSODYCTL, ...args, "start"], { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 20000);
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  clearTimeout(timer);
  return { code, out };
}

// --- (a) planted config and plugin folders ---

rootTest("a ./prosody.cfg.lua planted in a world-writable directory is refused; its plugin never runs", async () => {
  const dir = safeDir();
  chmodSync(dir, 0o777); // anyone could have put the files here
  const { dir: plugins, marker } = evilPlugins(dir);
  writeFileSync(join(dir, "prosody.cfg.lua"), cfg(`run_as_root = true\nplugin_paths = { ${JSON.stringify(plugins)} }\nmodules_enabled = { "evil" }`));
  for (const args of [["mod_evil", "x"], ["adduser", "a@example.com"], ["about"]]) {
    const r = await prosodyctl(args, { cwd: dir, input: "pw\npw\n" });
    assert.is(r.code, 1, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.is(r.stdout, `Refusing to use config file ${join(dir, "prosody.cfg.lua")} as root: ${dir} is writable by every user (mode 0777)\n`);
  }
  const s = await startRefused([], dir);
  assert.is(s.code, 1, s.out);
  assert.match(s.out, `Refusing to use config file ${join(dir, "prosody.cfg.lua")} as root: ${dir} is writable by every user`);
  assert.not.ok(existsSync(marker), "no plugin code ran");
});

rootTest("a plugin folder owned by nobody is refused (config otherwise fine), before any plugin code runs", async () => {
  const dir = safeDir();
  const { dir: plugins, marker } = evilPlugins(dir);
  chownSync(plugins, NOBODY, NOGROUP);
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, cfg(`run_as_root = true\nplugin_paths = { "${plugins}" }\nmodules_enabled = { "evil" }`));
  const r = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.stdout, `Refusing to use plugin folder ${plugins} (plugin_paths) as root: ${plugins} is owned by nobody (uid 65534), not by root (uid 0)\n`);
  const s = await startRefused(["--config", config], dir);
  assert.is(s.code, 1, s.out);
  assert.match(s.out, "is owned by nobody (uid 65534)");
  assert.not.ok(existsSync(marker), "no plugin code ran");
});

rootTest("one plugin's folder (or a file in it) owned by nobody inside a good plugin folder: that plugin is refused, the server does not start", async () => {
  const dir = safeDir();
  const { dir: plugins, marker } = evilPlugins(dir);
  chownSync(join(plugins, "mod_evil", "mod_evil.js"), NOBODY, NOGROUP);
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, cfg(`run_as_root = true\nplugin_paths = { "${plugins}" }\nmodules_enabled = { "evil" }`));
  const r = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(r.code, 1, r.stdout + r.stderr);
  const file = join(plugins, "mod_evil", "mod_evil.js");
  assert.match(r.stdout, `Failed to load module 'evil': Refusing to load mod_evil (${join(plugins, "mod_evil")}): ${file} is owned by nobody (uid 65534)`);
  const s = await startRefused(["--config", config], dir);
  assert.is(s.code, 1, s.out);
  assert.match(s.out, `Failed to start: Refusing to load mod_evil (${join(plugins, "mod_evil")}): ${file} is owned by nobody`);
  assert.not.ok(existsSync(marker), "no plugin code ran");
});

rootTest("group-writable: refused for a group other than root's or prosody's, accepted for root's", async () => {
  const dir = safeDir();
  const { dir: plugins, marker } = evilPlugins(dir);
  chmodSync(plugins, 0o775);
  chownSync(plugins, 0, NOGROUP);
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, cfg(`run_as_root = true\nplugin_paths = { "${plugins}" }`));
  const r = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.stdout, `Refusing to use plugin folder ${plugins} (plugin_paths) as root: ${plugins} is writable by group nogroup (gid 65534) (mode 0775)\n`);
  assert.not.ok(existsSync(marker));
  chownSync(plugins, 0, 0);
  const ok = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(ok.code, 0, ok.stdout + ok.stderr);
  assert.is(readFileSync(marker, "utf8"), "import 0\nload 0\ncommand 0\n");
});

rootTest("symlinks: a config reached through a link into a world-writable directory is refused; a link between safe places is fine", async () => {
  const dir = safeDir();
  const open = safeDir();
  chmodSync(open, 0o777);
  writeFileSync(join(open, "real.cfg.lua"), cfg("run_as_root = true"));
  const link = join(dir, "prosody.cfg.lua");
  symlinkSync(join(open, "real.cfg.lua"), link);
  const r = await prosodyctl(["--config", link, "mod_invites_api", "list", "example.com"], { cwd: dir });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.stdout, `Refusing to use config file ${link} as root: ${open} is writable by every user (mode 0777)\n`);

  const other = safeDir();
  writeFileSync(join(other, "real.cfg.lua"), cfg("run_as_root = true"));
  const good = join(dir, "good.cfg.lua");
  symlinkSync(join(other, "real.cfg.lua"), good);
  const ok = await prosodyctl(["--config", good, "mod_invites_api", "list", "example.com"], { cwd: dir });
  assert.is(ok.code, 0, ok.stdout + ok.stderr);
});

rootTest("an Include'd file that others can write is refused", async () => {
  const dir = safeDir();
  const { dir: plugins, marker } = evilPlugins(dir);
  const open = safeDir();
  chmodSync(open, 0o777);
  const extra = join(open, "extra.cfg.lua");
  writeFileSync(extra, `plugin_paths = { "${plugins}" }\n`);
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, `run_as_root = true\nInclude "${extra}"\n` + cfg(""));
  const r = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.stdout, `Refusing to use included config file ${extra} as root: ${open} is writable by every user (mode 0777)\n`);
  assert.not.ok(existsSync(marker));
});

rootTest("a directory in sticky /tmp owned by nobody is refused (nobody could swap its contents)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "prosody-ts-nobody-"));
  chownSync(dir, NOBODY, NOGROUP);
  chmodSync(dir, 0o755);
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, cfg("run_as_root = true"));
  const r = await prosodyctl(["--config", config, "mod_invites_api", "list", "example.com"], { cwd: dir });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.stdout, `Refusing to use config file ${config} as root: ${dir} is owned by nobody (uid 65534) in ${tmpdir()}, which every user can write to\n`);
});

prosodyTest("a prosody-owned config and plugin folder: runs, and the plugin runs as prosody, not root", async () => {
  const dir = safeDir();
  chmodSync(dir, 0o755);
  const { dir: plugins, marker } = evilPlugins(dir);
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, cfg(`plugin_paths = { "${plugins}" }`));
  for (const p of [dir, plugins, join(plugins, "mod_evil"), join(plugins, "mod_evil", "mod_evil.js"), config]) chownSync(p, prosody!.uid, prosody!.gid);
  const r = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.is(readFileSync(marker, "utf8"), `import ${prosody!.uid}\nload ${prosody!.uid}\ncommand ${prosody!.uid}\n`);
});

prosodyTest("a root-owned config: runs and drops privileges (the server too)", async () => {
  const dir = safeDir();
  chmodSync(dir, 0o755);
  const { dir: plugins, marker } = evilPlugins(dir);
  mkdirSync(join(dir, "data"));
  chownSync(join(dir, "data"), prosody!.uid, prosody!.gid);
  const config = join(dir, "prosody.cfg.lua");
  // The server listens (so it keeps running until stopped).
  const port = await freePort();
  writeFileSync(config, cfg(`plugin_paths = { "${plugins}" }\nmodules_enabled = { "http", "evil" }\nhttp_interfaces = { "127.0.0.1" }\nhttp_ports = { ${port} }`));
  const r = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.is(readFileSync(marker, "utf8"), `import ${prosody!.uid}\nload ${prosody!.uid}\ncommand ${prosody!.uid}\n`);

  const child = spawn(process.execPath, [PROSODYCTL, "--config", config, "start"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  const until = Date.now() + 15000;
  while (!out.includes("Activated host") && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGTERM");
  assert.is(await exited, 0, out);
  assert.is(readFileSync(marker, "utf8"), `import ${prosody!.uid}\nload ${prosody!.uid}\ncommand ${prosody!.uid}\nimport ${prosody!.uid}\nload ${prosody!.uid}\n`);
});

rootTest("staying root: a data directory (or database directory) others control is refused, as is creating one inside such a place", async () => {
  const dir = safeDir();
  const config = join(dir, "prosody.cfg.lua");
  const open = safeDir();
  chmodSync(open, 0o777);
  writeFileSync(config, `run_as_root = true\ndata_path = "${open}/data"\nVirtualHost "example.com"\n`);
  const r = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.stdout, `Refusing to use data directory ${open}/data as root: ${open} is writable by every user (mode 0777)\n`);
  assert.not.ok(existsSync(join(open, "data")), "nothing created");

  mkdirSync(join(dir, "data"));
  chownSync(join(dir, "data"), NOBODY, NOGROUP);
  writeFileSync(config, `run_as_root = true\ndata_path = "${dir}/data"\nVirtualHost "example.com"\n`);
  const owned = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
  assert.is(owned.code, 1, owned.stdout + owned.stderr);
  assert.is(owned.stdout, `Refusing to use data directory ${dir}/data as root: ${dir}/data is owned by nobody (uid 65534), not by root (uid 0)\n`);

  writeFileSync(config, `run_as_root = true\ndata_path = "${dir}/root-data"\nstorage = "sql"\nsql = { driver = "SQLite3", database = "${open}/db/prosody.sqlite" }\nVirtualHost "example.com"\n`);
  const db = await prosodyctl(["--config", config, "mod_invites_api", "create", "example.com"], { cwd: dir });
  assert.is(db.code, 1, db.stdout + db.stderr);
  assert.is(db.stdout, `Refusing to use the directory of SQLite database ${open}/db as root: ${open} is writable by every user (mode 0777)\n`);

  // The embedded default, as root, in a directory whose ./data belongs to someone else.
  const cwd = safeDir();
  mkdirSync(join(cwd, "data"));
  chownSync(join(cwd, "data"), NOBODY, NOGROUP);
  const embedded = await prosodyctl(["mod_invites_api", "list", "localhost"], { cwd, env: { PROSODY_CONFIG: "" } });
  assert.is(embedded.code, 1, embedded.stdout + embedded.stderr);
  assert.is(embedded.stdout, `Refusing to use data directory ${cwd}/data as root: ${cwd}/data is owned by nobody (uid 65534), not by root (uid 0)\n`);
});

rootTest("not root: nothing more is checked (a user can only hurt themselves), the planted-looking setup runs as that user", async () => {
  const dir = safeDir();
  chmodSync(dir, 0o777);
  const { dir: plugins, marker } = evilPlugins(dir);
  writeFileSync(join(dir, "prosody.cfg.lua"), cfg(`plugin_paths = { ${JSON.stringify(plugins)} }`));
  const child = spawn(process.execPath, [PROSODYCTL, "mod_evil", "x"], { cwd: dir, uid: NOBODY, gid: NOGROUP, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  assert.is(await new Promise((r) => child.on("exit", r)), 0, out);
  assert.is(readFileSync(marker, "utf8"), `import ${NOBODY}\nload ${NOBODY}\ncommand ${NOBODY}\n`);
});

// --- (b) no prosody user ---

rootTest("prosody_user missing: refused (CLI and server); --root or run_as_root = true runs as root", async () => {
  const dir = safeDir();
  const { dir: plugins, marker } = evilPlugins(dir);
  const body = (extra: string) => cfg(`prosody_user = "no_such_user_here"\nprosody_group = "nogroup"\nplugin_paths = { "${plugins}" }\n${extra}`);
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, body(""));
  const refusal =
    "Couldn't switch to Prosody user/group 'no_such_user_here'/'nogroup': no-such-user\n" +
    "Refusing to run as root (pass --root or set run_as_root = true to allow it; see https://prosody.im/doc/root)\n";
  const r = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.is(r.stdout, refusal);
  const s = await startRefused(["--config", config], dir);
  assert.is(s.code, 1, s.out);
  assert.match(s.out, refusal);
  assert.not.ok(existsSync(marker));

  const withFlag = await prosodyctl(["--root", "--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(withFlag.code, 0, withFlag.stdout + withFlag.stderr);
  writeFileSync(config, body("run_as_root = true"));
  const withOption = await prosodyctl(["--config", config, "mod_evil", "x"], { cwd: dir });
  assert.is(withOption.code, 0, withOption.stdout + withOption.stderr);
  assert.is(readFileSync(marker, "utf8"), "import 0\nload 0\ncommand 0\nimport 0\nload 0\ncommand 0\n");
});

rootTest("prosody_group missing (as on a machine without the prosody package: user and group of that name): Prosody's no-such-group, refused", async () => {
  const dir = safeDir();
  const config = join(dir, "prosody.cfg.lua");
  for (const [options, expected] of [
    [`prosody_user = "root"\nprosody_group = "no_such_group_here"`, "'root'/'no_such_group_here': no-such-group"],
    [`prosody_user = "no_such_user_here"`, "'no_such_user_here'/'no_such_user_here': no-such-group"],
  ]) {
    writeFileSync(config, cfg(options!));
    const r = await prosodyctl(["--config", config, "mod_invites_api", "list", "example.com"], { cwd: dir });
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.is(r.stdout, `Couldn't switch to Prosody user/group ${expected}\nRefusing to run as root (pass --root or set run_as_root = true to allow it; see https://prosody.im/doc/root)\n`);
  }
});

rootTest("the embedded default config (no file anywhere) stays a trial run as root, in the working directory", async () => {
  const dir = safeDir();
  const r = await prosodyctl(["mod_invites_api", "create", "localhost"], { cwd: dir, env: { PROSODY_CONFIG: "" } });
  assert.is(r.code, 0, r.stdout + r.stderr);
  assert.ok(existsSync(join(dir, "data", "prosody.sqlite")));
  const about = await prosodyctl(["about"], { cwd: dir, env: { PROSODY_CONFIG: "" } });
  assert.is(about.code, 0, about.stdout + about.stderr);
  assert.match(about.stdout, "embedded default config");
});

test.run();
