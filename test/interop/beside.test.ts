/**
 * Our server and a real Prosody 0.12 on ONE config file (same `pidfile` option): each prosodyctl
 * sees only its own server, our stop/reload never signal Prosody, Prosody's pidfile is untouched.
 * Skips with the reason when Prosody is not installed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createInstance, prosodyMissing } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

const missing = prosodyMissing();

async function until(what: string, check: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readOr(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

test("beside a real Prosody on the same config: status, reload and stop act on our server only", async (ctx) => {
  if (missing) return skip(ctx, missing);
  const inst = await createInstance("internal");
  try {
    await inst.startProsody();
    const theirs = join(inst.dir, "prosody.pid");
    await until("Prosody's pidfile", () => /^\d+$/.test(readOr(theirs).trim()));
    const prosodyPid = readOr(theirs).trim();
    await inst.startOurs();
    const ours = join(inst.dir, "prosody-ts.pid");
    await until("our pidfile", () => /^\d+\n$/.test(readOr(ours)));
    const ourPid = readOr(ours).trim();
    assert.is.not(ourPid, prosodyPid);

    assert.equal(await inst.ourCtl(["status"]), { stdout: `Prosody is running with PID ${ourPid}\n`, stderr: "", code: 0 });
    const real = inst.realCtl(["status"]);
    assert.match(real.stdout, `Prosody is running with PID ${prosodyPid}`);
    assert.is(real.code, 0);

    const reloaded = await inst.ourCtl(["reload"]);
    assert.is(reloaded.code, 0, reloaded.stdout);
    const stopped = await inst.ourCtl(["stop"]);
    assert.equal(stopped, { stdout: "Stopped\n", stderr: "", code: 0 });
    assert.is((await inst.get(inst.prosodyPort, "/invites_api?key=nokey")).status, 403, "Prosody still serves");
    assert.is(readOr(theirs).trim(), prosodyPid, "Prosody's pidfile untouched");
    assert.match(inst.realCtl(["status"]).stdout, `Prosody is running with PID ${prosodyPid}`);
    assert.equal(await inst.ourCtl(["status"]), { stdout: "Prosody is not running\n", stderr: "", code: 2 });
  } finally {
    await inst.cleanup();
  }
});

test.run();
