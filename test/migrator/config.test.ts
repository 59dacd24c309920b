/** migrator.cfg.lua as Prosody's prosody-migrator reads it (src/migrator/config.ts, in-process). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseMigratorArgs } from "../../src/migrator/args.js";
import { evaluateMigratorConfig, MigratorConfigError, splitStoreName, storeConfig } from "../../src/migrator/config.js";

const evaluate = (text: string) => evaluateMigratorConfig(text, "/etc/prosody/migrator.cfg.lua");

test("named stores of any name, in the order defined, with locals and concatenation", async () => {
  const c = await evaluate(`
local data_path = "/srv/prosody"
local vhost = { "accounts", "archive-archive", "pubsub_nodes-pubsub" }
output { type = "sql", driver = "SQLite3", database = data_path .. "/prosody.sqlite" }
input { type = "internal", path = data_path, hosts = { ["example.com"] = vhost, ["muc.example.com"] = {} } }
pg { type = "prosody_sql", driver = "PostgreSQL", database = "prosody", username = "prosody", password = "secret", host = "db", port = 5433 }
`);
  assert.equal([...c.raw.keys()], ["output", "input", "pg"]);
  const input = storeConfig(c, "input");
  assert.equal(input, {
    name: "input",
    backend: { type: "internal", path: "/srv/prosody" },
    hosts: new Map([
      ["example.com", ["accounts", "archive-archive", "pubsub_nodes-pubsub"]],
      ["muc.example.com", []],
    ]),
  });
  assert.equal(storeConfig(c, "output"), { name: "output", backend: { type: "sql", target: { driver: "SQLite3", file: "/srv/prosody/prosody.sqlite" } } });
  assert.equal(storeConfig(c, "pg"), {
    name: "pg",
    backend: { type: "sql", target: { driver: "PostgreSQL", database: "prosody", username: "prosody", password: "secret", host: "db", port: 5433 } },
  });
});

test("relative paths are Prosody's: from its data directory; path defaults to it", async () => {
  const c = await evaluate(`a { type = "internal", path = "data" }\nb { type = "prosody_files" }\nc { type = "sql", database = "x.sqlite" }\nd { type = "sql" }\n`);
  assert.equal(storeConfig(c, "a"), { name: "a", backend: { type: "internal", path: "/var/lib/prosody/data" } });
  assert.equal(storeConfig(c, "b"), { name: "b", backend: { type: "internal", path: "/var/lib/prosody" } });
  assert.equal(storeConfig(c, "c"), { name: "c", backend: { type: "sql", target: { driver: "SQLite3", file: "/var/lib/prosody/x.sqlite" } } });
  assert.equal(storeConfig(c, "d"), { name: "d", backend: { type: "sql", target: { driver: "SQLite3", file: "/var/lib/prosody/prosody.sqlite" } } });
});

test("bad stores are named with what is wrong", async () => {
  const c = await evaluate(`a { type = "files" }\nb "text"\nc { type = "sql", driver = "MySQL" }\nd { type = "internal", hosts = { ["x"] = "accounts" } }\n`);
  assert.equal(storeConfig(c, "a"), { error: `/etc/prosody/migrator.cfg.lua: store 'a': type must be "internal" or "sql", not "files"` });
  assert.match((storeConfig(c, "b") as { error: string }).error, /store 'b': must be a table/);
  assert.match((storeConfig(c, "c") as { error: string }).error, /store 'c': sql driver "MySQL" is not supported/);
  assert.match((storeConfig(c, "d") as { error: string }).error, /store 'd': hosts\["x"\] must be a list of store names/);
});

test("the standard library is out of reach, errors carry file and line, and endless loops stop", async () => {
  const err = async (text: string) => {
    try {
      await evaluate(text);
    } catch (e) {
      assert.instance(e, MigratorConfigError);
      return (e as Error).message;
    }
    throw new Error("no error");
  };
  assert.match(await err(`input { path = os.getenv("HOME") }`), /^\/etc\/prosody\/migrator\.cfg\.lua:1: attempt to index a function value/);
  assert.is(await err(`input {\n`), "/etc/prosody/migrator.cfg.lua:2: unexpected symbol near <eof>");
  assert.match(await err(`while true do end`), /the config takes too long to run/);
});

test("store types are split as Prosody splits them", () => {
  assert.equal(splitStoreName("accounts"), { store: "accounts", type: "keyval" });
  assert.equal(splitStoreName("muc_log-archive"), { store: "muc_log", type: "archive" });
  assert.equal(splitStoreName("pubsub_nodes-pubsub"), { store: "pubsub_nodes", type: "pubsub" });
});

test("options come before the store names, as in Prosody's argument parser", () => {
  assert.equal(parseMigratorArgs(["--config", "m.cfg.lua", "-v", "--keep-going", "a", "b"]), {
    config: "m.cfg.lua", keepGoing: true, verbose: true, help: false, root: false, positional: ["a", "b"],
  });
  assert.equal(parseMigratorArgs(["a", "--config", "x"]), { config: undefined, keepGoing: false, verbose: false, help: false, root: false, positional: ["a", "--config", "x"] });
  assert.equal((parseMigratorArgs(["-?"]) as { help?: boolean }).help, true);
  assert.equal(parseMigratorArgs(["-x"]), { error: "Unknown command-line option: -x" });
});

test.run();
