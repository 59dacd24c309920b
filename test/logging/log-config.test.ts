/** Prosody's `log` option, every form, read into sink rules (src/core/log-config.ts). */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadConfigString } from "../../src/core/config/index.js";
import { LogConfigError, logRules, type SinkRule } from "../../src/core/log-config.js";

async function rules(body: string): Promise<SinkRule[]> {
  const config = await loadConfigString(body, "/etc/prosody/test.cfg.lua");
  return logRules(config, { cwd: "/srv/run" });
}

/** A compact view: "to[:filename] levels…". */
function brief(list: SinkRule[]): string[] {
  return list.map((r) => `${r.to}${r.filename ? `:${r.filename}` : ""} ${[...r.levels].join(",")}`);
}

test("unset: the console (stdout layout, width 20) at info; with debug = true at debug", async () => {
  const [rule] = await rules("");
  assert.equal(brief([rule!]), ["console info,warn,error"]);
  assert.equal(rule!.timestamps, false);
  assert.equal(rule!.sourceWidth, 20);
  assert.equal(brief(await rules("debug = true")), ["console debug,info,warn,error"]);
});

test("a file name: that file at info, with Prosody's timestamps; relative names from the working directory", async () => {
  const [rule] = await rules(`log = "prosody.log"`);
  assert.equal(brief([rule!]), ["file:/srv/run/prosody.log info,warn,error"]);
  assert.is(rule!.timestamps, "%b %d %H:%M:%S ");
  assert.is(rule!.sourceWidth, undefined);
  assert.equal(brief(await rules(`debug = true log = "/var/log/p.log"`)), ["file:/var/log/p.log debug,info,warn,error"]);
});

test('"*sink" alone: every level to that sink', async () => {
  assert.equal(brief(await rules(`log = "*syslog"`)), ["syslog debug,info,warn,error"]);
  assert.equal(brief(await rules(`log = "*stderr"`)), ["stderr debug,info,warn,error"]);
});

test("a table by level (Debian's stock form): each entry from its level up, files and *sinks", async () => {
  const list = await rules(`log = { error = "/var/log/prosody/prosody.err"; info = "/var/log/prosody/prosody.log"; warn = "*syslog" }`);
  assert.equal(brief(list), [
    "file:/var/log/prosody/prosody.log info,warn,error",
    "syslog warn,error",
    "file:/var/log/prosody/prosody.err error",
  ]);
  assert.is(list[0]!.timestamps, "%b %d %H:%M:%S ");
});

test("list entries: bare *sinks at every level, advanced tables with levels min/max/list", async () => {
  const list = await rules(`log = {
    info = "i.log";
    "*console";
    { to = "file", filename = "/tmp/w.log", levels = { "warn", "error" }, timestamps = "%Y-%m-%d %H:%M:%S" };
    { to = "stdout", levels = { min = "info", max = "warn" } };
    { to = "syslog", levels = { min = "warn" }, syslog_name = "xmpp", syslog_facility = "local3" };
    { to = "file", filename = "/tmp/only-warn.log", levels = { max = "warn" }, source_width = 12, timestamps = false };
    { to = "nowhere" };
  }`);
  assert.equal(brief(list), [
    "file:/srv/run/i.log info,warn,error",
    "console debug,info,warn,error",
    "file:/tmp/w.log warn,error",
    "stdout info,warn",
    "syslog warn,error",
    // As Prosody's get_levels: max without min is that one level.
    "file:/tmp/only-warn.log warn",
    "nowhere debug,info,warn,error",
  ]);
  assert.is(list[2]!.timestamps, "%Y-%m-%d %H:%M:%S ");
  assert.is(list[4]!.syslogName, "xmpp");
  assert.is(list[4]!.syslogFacility, "local3");
  assert.is(list[5]!.sourceWidth, 12);
  assert.is(list[5]!.timestamps, false);
});

test("syslog: ident prosody and facility daemon by default; the global syslog_facility applies", async () => {
  const [plain] = await rules(`log = "*syslog"`);
  assert.is(plain!.syslogName, "prosody");
  assert.is(plain!.syslogFacility, "daemon");
  const [global] = await rules(`syslog_facility = "local0" log = { "*syslog" }`);
  assert.is(global!.syslogFacility, "local0");
});

test("an empty table logs nothing", async () => {
  assert.equal(await rules("log = {}"), []);
});

test("mistakes are LogConfigErrors naming the problem (Prosody would drop the rule silently)", async () => {
  const cases: Array<[string, RegExp]> = [
    [`log = "*sylog"`, /unknown sink "\*sylog"/],
    [`log = { info = "*consol" }`, /info = "\*consol": unknown sink/],
    [`log = { { to = "files", filename = "x" } }`, /entry 1: unknown sink to = "files"/],
    [`log = { { to = "file" } }`, /entry 1: a "file" sink needs filename/],
    [`log = { { to = "file", filename = "x", levels = { min = "warning" } } }`, /levels.min is "warning", not a level/],
    [`log = { { to = "console", levels = { "infos" } } }`, /unknown level "infos"/],
    [`log = { notice = "x.log" }`, /unknown key "notice"/],
    [`log = { "x.log" }`, /entry 1 is "x.log": a list entry is "\*sink" or a table/],
    [`log = { { to = "syslog", syslog_facility = "daemons" } }`, /unknown syslog facility "daemons"/],
    [`syslog_facility = "nope" log = "*syslog"`, /syslog_facility: unknown syslog facility "nope"/],
    [`log = { { to = "console", colour = true } }`, /unknown key "colour"/],
    [`log = 5`, /expected a file name or a table/],
    [`log = ""`, /log file name is empty/],
  ];
  for (const [body, message] of cases) {
    try {
      await rules(body);
      assert.unreachable(`accepted: ${body}`);
    } catch (err) {
      assert.instance(err, LogConfigError, body);
      assert.match((err as Error).message, /^Invalid 'log' option: /, body);
      assert.match((err as Error).message, message, body);
    }
  }
});

test.run();
