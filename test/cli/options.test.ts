/** prosodyctl's global options (issue 13): --embedded-config, --version, and unknown long options refused. */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseArgs } from "../../src/cli/options.js";

test("--embedded-config and --version are global options; --no-X of a known one is accepted", () => {
  const r = parseArgs(["--embedded-config", "--no-root", "start"]);
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.is(r.options.embeddedConfig, true);
  assert.is(r.options.root, false);
  assert.is(r.command, "start");
  const v = parseArgs(["--version"]);
  assert.ok(v.ok && v.options.version && v.command === undefined);
});

test("an unknown long option before the command is refused, with or without a value (Prosody would ignore it)", () => {
  assert.equal(parseArgs(["--conifg", "x.cfg.lua", "start"]), { ok: false, error: "Unknown command-line option: --conifg" });
  assert.equal(parseArgs(["--conifg=x.cfg.lua", "start"]), { ok: false, error: "Unknown command-line option: --conifg" });
  // After the command word options belong to the command: not ours to judge here.
  const after = parseArgs(["mod_x", "--anything"]);
  assert.ok(after.ok && after.args[0] === "--anything");
});

test.run();
