/**
 * Our log lines against real Prosody's (core/loggingmanager.lua): the same records rendered by our
 * formatters must give Prosody's bytes, for files (timestamps, tabs), the console/stdout column
 * layout (width 20, widening for good), a file with source_width, custom timestamps. Golden lines
 * captured from Prosody 0.12.3, and the same comparison live when real Prosody is installed.
 */
import { spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { lineFormatter, strftime } from "../../src/core/log-format.js";
import type { LogLevel } from "../../src/core/types.js";
import { freePort } from "../helpers/http.js";
import { prosodyMissing } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

const GOLDEN = JSON.parse(readFileSync(join(import.meta.dirname, "../fixtures/logging/prosody-0.12.3-lines.json"), "utf8")) as Record<string, string[]>;
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

interface Rec {
  time: Date;
  source: string;
  level: LogLevel;
  message: string;
}

/** A line of a default-layout file, read back into its record (local time, as Prosody writes it). */
function parseFileLine(line: string, year: number): Rec {
  const m = /^(\w{3}) (\d\d) (\d\d):(\d\d):(\d\d) ([^\t]+)\t(debug|info|warn|error)\t(.*)$/s.exec(line);
  if (!m) throw new Error(`not a Prosody file line: ${JSON.stringify(line)}`);
  const time = new Date(year, MONTHS.indexOf(m[1]!), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
  return { time, source: m[6]!, level: m[7] as LogLevel, message: m[8]! };
}

function render(records: Rec[], layout: Parameters<typeof lineFormatter>[0]): string[] {
  const format = lineFormatter(layout);
  return records.map((r) => format(r.time, r.source, r.level, r.message).replace(/\n$/, ""));
}

test("golden: the file layout is Prosody's (\"%b %d %H:%M:%S \" then source, tab, level, tab, message)", () => {
  const records = GOLDEN.file!.map((l) => parseFileLine(l, 2026));
  assert.equal(render(records, { timestamps: "%b %d %H:%M:%S " }), GOLDEN.file);
});

test("golden: the console/stdout layout is Prosody's (no timestamp, source column 20)", () => {
  const records = GOLDEN.file!.map((l) => parseFileLine(l, 2026));
  assert.equal(render(records, { timestamps: false, sourceWidth: 20 }), GOLDEN.stdout);
});

test("golden: source_width = 10 widens for good to fit a longer name, as Prosody's column does", () => {
  const records = GOLDEN.file!.map((l) => parseFileLine(l, 2026));
  const ours = render(records, { timestamps: "%b %d %H:%M:%S ", sourceWidth: 10 });
  assert.equal(ours, GOLDEN.file_source_width_10);
  // The capture really shows the widening (guards the fixture itself).
  assert.ok(ours.some((l) => l.includes("storagemanager  debug")) && ours.some((l) => l.includes("usermanager     debug")));
});

test("golden: a custom timestamps format gets one space after it", () => {
  const [line] = GOLDEN.file_custom_timestamps!;
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) ([^\t]+)\t(\w+)\t(.*)$/.exec(line!)!;
  const time = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  const ours = lineFormatter({ timestamps: "%Y-%m-%d %H:%M:%S " })(time, m[7]!, m[8] as LogLevel, m[9]!);
  assert.is(ours, `${line}\n`);
});

test("a console on a terminal colours the level as Prosody does (bold, bold yellow, bold red; debug plain)", () => {
  const format = lineFormatter({ timestamps: false, sourceWidth: 20, colour: true });
  const t = new Date();
  assert.is(format(t, "general", "info", "x"), "general             \x1b[1minfo\x1b[0m\tx\n");
  assert.is(format(t, "general", "warn", "x"), "general             \x1b[1;33mwarn\x1b[0m\tx\n");
  assert.is(format(t, "general", "error", "x"), "general             \x1b[1;31merror\x1b[0m\tx\n");
  assert.is(format(t, "general", "debug", "x"), "general             debug\tx\n");
});

test("the column counts bytes, as Lua's # does (a non-ASCII host name)", () => {
  const format = lineFormatter({ timestamps: false, sourceWidth: 20 });
  assert.is(format(new Date(), "ünï.example:http", "info", "x"), `ünï.example:http  info\tx\n`);
  // 18 bytes + 2 = 20: no widening yet; one byte more widens.
  assert.is(format(new Date(), "ünïcödé.example:ab", "info", "x"), `ünïcödé.example:ab  info\tx\n`);
});

test("strftime: C-locale conversions os.date uses, in local time", () => {
  const d = new Date(2026, 0, 7, 9, 5, 3);
  assert.is(strftime("%b %d %H:%M:%S", d), "Jan 07 09:05:03");
  assert.is(strftime("%a %A %B %e %y %Y %m %j %I %p %T %F %D %% %Q", d), "Wed Wednesday January  7 26 2026 01 007 09 AM 09:05:03 2026-01-07 01/07/26 % %Q");
});

test("live: real Prosody's file, stdout and source_width lines equal ours for the same records", async (ctx) => {
  const missing = prosodyMissing();
  if (missing) return skip(ctx, missing);
  const dir = mkdtempSync(join(tmpdir(), "log-format-"));
  chmodSync(dir, 0o755);
  const uid = Number(execFileSync("id", ["-u", "prosody"]).toString());
  const gid = Number(execFileSync("id", ["-g", "prosody"]).toString());
  chownSync(dir, uid, gid);
  const [http, c2s] = [await freePort(), await freePort()];
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(
    config,
    `pidfile = "${dir}/prosody.pid"
data_path = "${dir}"
http_ports = { ${http} } http_interfaces = { "127.0.0.1" }
c2s_ports = { ${c2s} } c2s_interfaces = { "127.0.0.1" } s2s_ports = { } interfaces = { "127.0.0.1" }
modules_enabled = { "http" }
log = {
  { levels = { min = "debug" }, to = "file", filename = "${dir}/all.log" };
  { levels = { min = "debug" }, to = "file", filename = "${dir}/sw.log", source_width = 5 };
  "*stdout";
}
VirtualHost "example.com"
`,
  );
  let stdout = "";
  const child = spawn("runuser", ["-u", "prosody", "--", "prosody", "--config", config, "-F"], { cwd: dir, stdio: ["ignore", "pipe", "ignore"] });
  child.stdout!.on("data", (d) => (stdout += d));
  const exited = new Promise((r) => child.on("exit", r));
  try {
    const until = Date.now() + 15_000;
    while (!(existsSync(join(dir, "all.log")) && readFileSync(join(dir, "all.log"), "utf8").includes("Activated host"))) {
      if (Date.now() > until) throw new Error(`real Prosody did not start:\n${stdout}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
  const year = new Date().getFullYear();
  const fileLines = readFileSync(join(dir, "all.log"), "utf8").split("\n").filter(Boolean);
  const records = fileLines.map((l) => parseFileLine(l, year));
  const stdoutLines = stdout.split("\n").filter(Boolean);
  const swLines = readFileSync(join(dir, "sw.log"), "utf8").split("\n").filter(Boolean);
  assert.ok(records.length > 10, `few lines:\n${fileLines.join("\n")}`);
  assert.equal(render(records, { timestamps: "%b %d %H:%M:%S " }), fileLines);
  assert.equal(render(records, { timestamps: false, sourceWidth: 20 }), stdoutLines.slice(0, records.length));
  assert.equal(render(records, { timestamps: "%b %d %H:%M:%S ", sourceWidth: 5 }), swLines.slice(0, records.length));
  rmSync(dir, { recursive: true, force: true });
});

test.run();
