/**
 * checkCertificates (`prosodyctl check certs`): Prosody's wording for a good certificate, a
 * missing one, an expired one, one expiring soon and one naming other hosts, compared line by
 * line with the real prosodyctl 0.12 on the same config (hosts in any order).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkCertificates } from "../../src/cli/check-certs.js";
import { loadConfigFile } from "../../src/core/config/index.js";
import { makeCert, opensslMissing } from "../helpers/certs.js";
import { prosodyMissing } from "../helpers/prosody.js";
import { skip } from "../helpers/skip.js";

const HOSTS = ["example.com", "sub.example.com", "other.org", "expired.net", "soon.net", "nocert.invalid"];

/** A config directory with one certificate situation per host. */
function setup(): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), "check-certs-"));
  chmodSync(dir, 0o755);
  const c = join(dir, "certs");
  makeCert(join(c, "example.com.crt"), join(c, "example.com.key"), { cn: "example.com", dns: ["example.com", "*.example.com"], days: 300 });
  makeCert(join(c, "other.org", "fullchain.pem"), join(c, "other.org", "privkey.pem"), { cn: "wrong.name", days: 300 });
  makeCert(join(c, "expired.net.crt"), join(c, "expired.net.key"), { cn: "expired.net", days: -1 });
  makeCert(join(c, "soon.net.crt"), join(c, "soon.net.key"), { cn: "soon.net", days: 3 });
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(
    config,
    `certificates = "certs"\nlog = { error = "${dir}/prosody.err" }\n` +
      HOSTS.map((h) => `VirtualHost "${h}"\n`).join("") +
      `VirtualHost "off.example"\n  enabled = false\n`,
  );
  return { dir, config };
}

async function ours(configFile: string): Promise<{ lines: string[]; problems: number }> {
  const lines: string[] = [];
  const config = await loadConfigFile(configFile);
  const problems = await checkCertificates(config, { out: (l) => lines.push(l) });
  return { lines, problems };
}

/** Per-host blocks (the lines after "Checking certificate for X"), and the lines around them. */
function blocks(lines: string[]): { head: string[]; hosts: Map<string, string[]>; tail: string[] } {
  const head: string[] = [];
  const hosts = new Map<string, string[]>();
  const tail: string[] = [];
  let current: string[] | undefined;
  for (const line of lines) {
    const m = /^Checking certificate for (.+)$/.exec(line);
    if (m) hosts.set(m[1]!, (current = []));
    else if (line === "" || line.startsWith("For more information")) (current = undefined), tail.push(line);
    else if (current) current.push(line);
    else (hosts.size ? tail : head).push(line);
  }
  return { head, hosts, tail };
}

test("check certs: Prosody's lines for good, missing, expired, expiring and misnamed certificates", async (ctx) => {
  const missing = opensslMissing();
  if (missing) return skip(ctx, missing);
  const { dir, config } = setup();
  const { lines, problems } = await ours(config);
  const b = blocks(lines);
  assert.equal(b.head, ["Checking certificates..."]);
  assert.equal([...b.hosts.keys()], HOSTS, "config order, the disabled host left out");
  assert.equal(b.hosts.get("example.com"), [`  Certificate: ${dir}/certs/example.com.crt`]);
  assert.equal(b.hosts.get("sub.example.com"), [`  Certificate: ${dir}/certs/example.com.crt`], "found through the wildcard");
  assert.equal(b.hosts.get("other.org"), [
    `  Certificate: ${dir}/certs/other.org/fullchain.pem`,
    "    Not valid for client connections to other.org.",
    "    Not valid for server-to-server connections to other.org.",
  ]);
  assert.equal(b.hosts.get("expired.net"), [`  Certificate: ${dir}/certs/expired.net.crt`, "    Certificate has expired."]);
  assert.equal(b.hosts.get("soon.net"), [`  Certificate: ${dir}/certs/soon.net.crt`, "    Certificate expires within one week."]);
  assert.equal(b.hosts.get("nocert.invalid"), ["  No 'certificate' found for nocert.invalid"]);
  assert.equal(b.tail, ["", "For more information about certificates please see https://prosody.im/doc/certificates", ""]);
  assert.is(problems, 4);
});

test("check certs: nothing wrong → no problems, no advice", async (ctx) => {
  const missing = opensslMissing();
  if (missing) return skip(ctx, missing);
  const dir = mkdtempSync(join(tmpdir(), "check-certs-ok-"));
  makeCert(join(dir, "tls", "site.crt"), join(dir, "tls", "site.key"), { cn: "example.com", days: 300 });
  const config = join(dir, "prosody.cfg.lua");
  writeFileSync(config, `VirtualHost "example.com"\n  ssl = { certificate = "tls/site.crt", key = "tls/site.key" }\n`);
  const { lines, problems } = await ours(config);
  assert.equal(lines, ["Checking certificates...", "Checking certificate for example.com", `  Certificate: ${dir}/tls/site.crt`, ""]);
  assert.is(problems, 0);
});

test("check certs: the same lines as the real prosodyctl 0.12", async (ctx) => {
  const missing = opensslMissing() ?? prosodyMissing();
  if (missing) return skip(ctx, missing);
  const { dir, config } = setup();
  execFileSync("chown", ["-R", "prosody:prosody", dir]);
  const real = spawnSync("prosodyctl", ["--config", config, "check", "certs"], { cwd: dir, encoding: "utf8" });
  assert.is(real.status, 2, real.stdout + real.stderr);
  // Prosody's own log lines (certmanager) and the dispatcher's verdict are not part of this section.
  const realLines = real.stdout.split("\n").filter((l) => !/^certmanager\s/.test(l));
  assert.is(realLines.splice(realLines.lastIndexOf("Problems found, see above."), 2).length, 2);
  const theirs = blocks(realLines);
  const mine = blocks((await ours(config)).lines);
  assert.equal(mine.head, theirs.head);
  assert.equal([...mine.hosts.keys()].sort(), [...theirs.hosts.keys()].sort());
  for (const [host, lines] of theirs.hosts) assert.equal(mine.hosts.get(host), lines, host);
  assert.equal(mine.tail, theirs.tail);
});

test.run();
