/** Every way a config can fail: one-line ConfigError messages "file:line: reason" (spec §5). */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigFile, loadConfigString } from "../../src/core/config/index.js";
import { fixture, rejects } from "./_helpers.js";

const FILE = "/srv/chat/prosody.cfg.lua";
const load = (text: string) => loadConfigString(text, FILE, { env: {} });

const syntax = suite("core/config: syntax and runtime errors");

syntax("a syntax error names file and line", async () => {
  const err = await rejects(load(`admins = { }\nVirtualHost "a.example"\n  enabled = = true`), `${FILE}:3: unexpected symbol near '='`);
  assert.is(err.file, FILE);
  assert.is(err.line, 3);
});

syntax("a syntax error in a config file on disk", async () => {
  const file = fixture("errors", "syntax-error.cfg.lua");
  const err = await rejects(loadConfigFile(file), `${file}:3: unexpected symbol near '='`);
  assert.is(err.line, 3);
});

syntax("a runtime error names file and line", async () => {
  await rejects(load(`x = 1\nlocal n = nil\ny = n.field`), `${FILE}:3: attempt to index a nil value (local 'n')`);
  await rejects(load(`x = 1 + {}`), `${FILE}:1: attempt to perform arithmetic on a table value`);
});

syntax("error() and assert() in the config report their message with the position", async () => {
  await rejects(load(`\nerror("Please set DOMAIN")`), `${FILE}:2: Please set DOMAIN`);
  await rejects(load(`local d = assert(ENV_UNSET_FOR_TEST, "Please set UNSET_FOR_TEST")`), `${FILE}:1: Please set UNSET_FOR_TEST`);
});

syntax("errors without a position, multi-line messages and error objects still make one line", async () => {
  await rejects(load(`error("no position", 0)`), `${FILE}: no position`);
  await rejects(load(`error("first\\nsecond")`), `${FILE}:1: first second`);
  await rejects(load(`error({ code = 1 })`), `${FILE}: (error object is a table value)`);
});

syntax("FileContents, FileLine, FileLines and Credential (Prosody 0.13) are nil: calling them fails", async () => {
  for (const fn of ["FileContents", "FileLine", "FileLines", "Credential"]) {
    await rejects(load(`secret = ${fn}("/etc/secret")`), `${FILE}:1: attempt to call a nil value (global '${fn}')`);
  }
});

syntax("an endless loop is stopped", async () => {
  await rejects(load(`x = 1\nwhile true do end`), `${FILE}:2: config evaluation took too long (endless loop?)`);
  await rejects(
    load(`x = 1\nwhile true do pcall(function()\nwhile true do end end) end`),
    `${FILE}:3: config evaluation took too long (endless loop?)`,
  );
});

syntax.run();

const sandbox = suite("core/config: blocked functions");

sandbox("require, dofile, loadfile, load and loadstring are blocked", async () => {
  for (const name of ["require", "dofile", "loadfile", "load", "loadstring"]) {
    await rejects(load(`x = 1\n${name}("anything")`), `${FILE}:2: '${name}' is not available in config files`);
  }
});

sandbox("io, package, debug and the unsafe parts of os are blocked", async () => {
  await rejects(load(`local f = io.open("/etc/passwd")`), `${FILE}:1: 'io.open' is not available in config files`);
  await rejects(load(`io.write("x")`), `${FILE}:1: 'io.write' is not available in config files`);
  await rejects(load(`\nos.execute("touch /tmp/pwned")`), `${FILE}:2: 'os.execute' is not available in config files`);
  await rejects(load(`os.exit(1)`), `${FILE}:1: 'os.exit' is not available in config files`);
  await rejects(load(`os.remove("/tmp/x")`), `${FILE}:1: 'os.remove' is not available in config files`);
  await rejects(load(`p = package.path`), `${FILE}:1: 'package.path' is not available in config files`);
  await rejects(load(`debug.sethook()`), `${FILE}:1: 'debug.sethook' is not available in config files`);
  await rejects(load(`_G.x = 1`), `${FILE}:1: cannot assign to _G.x in a config file`);
});

sandbox("RunScript is not supported", async () => {
  await rejects(load(`RunScript "extra.lua"`), `${FILE}:1: RunScript is not supported ("extra.lua"); put options in the config file or an Include`);
});

sandbox.run();

const sections = suite("core/config: section errors");

sections("a host name with forbidden characters", async () => {
  await rejects(load(`VirtualHost "chat example.org"`), `${FILE}:1: Name of Host "chat example.org" contains forbidden characters`);
  await rejects(load(`x = 1\nVirtualHost "user@example.org"`), `${FILE}:2: Name of Host "user@example.org" contains forbidden characters`);
  await rejects(load(`Host "example.org/res"`), `${FILE}:1: Name of Host "example.org/res" contains forbidden characters`);
  await rejects(load(`VirtualHost "bad\\1name"`), `${FILE}:1: Name of Host "bad\\u0001name" contains forbidden characters`);
  await rejects(load(`VirtualHost "tab\\there"`), `${FILE}:1: Name of Host "tab\\there" contains forbidden characters`);
  await rejects(load(`VirtualHost ""`), `${FILE}:1: Name of Host "" contains forbidden characters`);
  await rejects(load(`Component "rooms example.org" "muc"`), `${FILE}:1: Name of Component "rooms example.org" contains forbidden characters`);
});

sections("a missing or non-string host name", async () => {
  await rejects(load(`VirtualHost()`), `${FILE}:1: Host must have a name`);
  await rejects(load(`VirtualHost(ENV_NOT_SET_ANYWHERE)`), `${FILE}:1: Host must have a name`);
  await rejects(load(`Component()`), `${FILE}:1: Component must have a name`);
  await rejects(load(`VirtualHost(42)`), `${FILE}:1: Host name must be a string, got a number`);
});

sections("the same name as VirtualHost and Component, in either order", async () => {
  await rejects(
    load(`VirtualHost "example.org"\nComponent "example.org" "muc"`),
    `${FILE}:2: Component "example.org" clashes with VirtualHost "example.org" defined earlier; a service needs its own sub-domain (e.g. conference.example.org)`,
  );
  await rejects(
    load(`Component "Example.org" "muc"\n\nVirtualHost "example.org"`),
    `${FILE}:3: VirtualHost "example.org" clashes with Component "example.org" defined earlier; a service needs its own sub-domain (e.g. conference.example.org)`,
  );
});

sections("a VirtualHost given a module name", async () => {
  await rejects(
    load(`VirtualHost "rooms.example.org" "muc"`),
    `${FILE}:1: VirtualHost entries do not accept a module name ('muc' given for host 'rooms.example.org'); use Component "<sub-domain>" "muc" for a service`,
  );
});

sections("a table form given something other than a table", async () => {
  await rejects(load(`VirtualHost "a.example" (true)`), `${FILE}:1: Invalid syntax following VirtualHost "a.example": expected a table of options, got a boolean`);
  await rejects(load(`Component "b.example" "muc" "extra"`), `${FILE}:1: Invalid syntax following Component "b.example": expected a table of options, got a string`);
});

sections.run();

const include = suite("core/config: Include errors");

include("a missing included file is fatal", async () => {
  const main = fixture("errors", "include-missing.cfg.lua");
  const err = await rejects(
    loadConfigFile(main),
    `${main}:3: Error loading included ${fixture("errors", "parts", "not-there.cfg.lua")}: No such file or directory`,
  );
  assert.is(err.file, main);
  assert.is(err.line, 3);
});

include("a syntax error inside an included file names that file", async () => {
  const part = fixture("errors", "parts", "syntax-error.cfg.lua");
  const err = await rejects(loadConfigFile(fixture("errors", "include-syntax.cfg.lua")), `${part}:4: '}' expected (to close '{' at line 2) near '"saslauth"'`);
  assert.is(err.file, part);
  assert.is(err.line, 4);
});

include("a runtime error inside an included file names that file", async () => {
  const part = fixture("errors", "parts", "runtime-error.cfg.lua");
  await rejects(loadConfigFile(fixture("errors", "include-runtime.cfg.lua")), `${part}:2: attempt to call a nil value (global 'FileContents')`);
});

include("a file that includes itself", async () => {
  const main = fixture("errors", "include-loop.cfg.lua");
  await rejects(loadConfigFile(main), `${main}:3: Include nested too deeply (does ${main} include itself?)`);
});

include("a glob matching a directory (which Prosody cannot read either)", async () => {
  const main = fixture("errors", "include-directory.cfg.lua");
  await rejects(loadConfigFile(main), `${main}:2: Error loading included ${fixture("errors", "dirs", "sub.d")}: Is a directory`);
});

include("a glob in a directory whose directory is missing, or a wildcard before the last component", async () => {
  await rejects(load(`Include "conf.d/*.cfg.lua"`), `${FILE}:1: Error loading included /srv/chat/conf.d/*.cfg.lua: No such file or directory`);
  await rejects(
    load(`Include "*/x.cfg.lua"`),
    `${FILE}:1: Error loading included /srv/chat/*/x.cfg.lua: wildcards are only allowed in the last path component`,
  );
});

include("Include without a file name", async () => {
  await rejects(load(`Include(nil)`), `${FILE}:1: Include expects a file name, got a nil`);
});

include.run();

const files = suite("core/config: unreadable config files");

files("a missing config file is a ConfigError naming the path", async () => {
  const missing = fixture("no-such-config.cfg.lua");
  const err = await rejects(loadConfigFile(missing), `Cannot read config file ${missing}: No such file or directory`);
  assert.is(err.file, missing);
  assert.is(err.line, undefined);
});

files("a directory given as the config file", async () => {
  const dir = fixture("errors");
  await rejects(loadConfigFile(dir), `Cannot read config file ${dir}: Is a directory`);
});

files.run();
