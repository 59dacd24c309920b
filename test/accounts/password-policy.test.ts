/**
 * Issue 11 item 9: mod_password_policy's rules against the same rules evaluated by Lua 5.4 itself
 * (Prosody's module is not packaged here): `#password < length` counts bytes, and the username
 * check is `password:lower():find(username:lower(), 1, true)`, where string.lower only changes
 * ASCII. A seeded corpus of passwords and usernames (ASCII, Latin-1, Greek, Cyrillic, Turkish
 * dotted I, multi-byte characters around the length limit). Skipped when lua5.4 is missing.
 */
import { spawnSync } from "node:child_process";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { makeConfig } from "../helpers/config.js";
import { createRuntime } from "../../src/create-runtime.js";
import { setLogLevel } from "../../src/core/logger.js";
import type { PasswordPolicyApi } from "../../plugins/mod_password_policy/mod_password_policy.js";
import { skip } from "../helpers/skip.js";

const missing = spawnSync("lua5.4", ["-v"]).status !== 0 ? "lua5.4 not found (apt install lua5.4)" : undefined;

// The rule expressions of prosody-modules' check_password, one hex-encoded "password username" per line.
const LUA = `
local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local length = LENGTH
for line in io.lines() do
  local pw, user = line:match("^(%x*) (%x*)$")
  pw, user = unhex(pw), unhex(user)
  if pw == "" then print("No password provided")
  elseif #pw < length then print(("Password is too short (minimum %d characters)"):format(length))
  elseif pw:lower():find(user:lower(), 1, true) then print("Password must not include your username")
  else print("ok") end
end`;

async function policy(options: Record<string, number | boolean>): Promise<PasswordPolicyApi> {
  const rt = createRuntime({ config: makeConfig({ storage: "memory", password_policy: options }, { "example.com": {} }), processType: "server" });
  return (await rt.modules.load("example.com", "password_policy")).exports as PasswordPolicyApi;
}

test("the same verdicts as Lua's #password and string.lower/find over a seeded corpus", async (ctx) => {
  if (missing) return skip(ctx, missing);
  setLogLevel("error");
  const alphabet = [..."abcXYZ019 -_ÄäÖößẞΣσςДдİıIi€😀\u0301"];
  let seed = 0xc0ffee;
  const rand = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const word = (max: number) => Array.from({ length: rand(max + 1) }, () => alphabet[rand(alphabet.length)]).join("");
  const pairs: Array<[string, string]> = [
    ["ääää", "x"], ["äää", "x"], ["ÄBCdef12", "äbc"], ["xxBOBxx12", "bob"], ["ΣΑΣ-secret", "σασ"], ["İstanbul99", "istanbul"], ["anything1", ""],
  ];
  for (let i = 0; i < 4000; i++) {
    const user = word(4) || "u";
    const pw = rand(3) === 0 ? word(5) + (rand(2) ? user.toUpperCase() : user) + word(5) : word(14);
    pairs.push([pw, user]);
  }
  for (const length of [8, 10, 3]) {
    const p = await policy({ length, exclude_username: length === 3 ? false : true });
    const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");
    const run = spawnSync("lua5.4", ["-e", LUA.replace("LENGTH", String(length))], {
      input: pairs.map(([pw, u]) => `${hex(pw)} ${hex(u)}`).join("\n") + "\n",
      encoding: "utf8",
    });
    assert.is(run.status, 0, run.stderr);
    const theirs = run.stdout.split("\n").slice(0, -1);
    assert.is(theirs.length, pairs.length);
    const diffs = pairs
      .map(([pw, u], i) => ({ pw, u, ours: p.checkPassword(pw, { username: u }) ?? "ok", lua: theirs[i] }))
      .filter((d) => d.ours !== d.lua)
      .slice(0, 10);
    assert.equal(diffs, [], `length ${length}`);
  }
});

test.run();
